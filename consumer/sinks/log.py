"""The log as an alert sink: one JSON line per alert, with all its fields; not durable."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec

from consumer.daemon.ports import Ack
from consumer.formats.alerts import Alert, AnyAlert
from consumer.observe.logs import fields

log = logging.getLogger("consumer.alerts")  # a stable name operators filter alert lines on


def log_event(alert: AnyAlert) -> str:
    """The log event name of an alert: ``stall_firing``, ``source_silent_resolved``..."""
    if isinstance(alert, Alert):
        return f"stall_{alert.status}"
    return "source_silent" if alert.status == "firing" else "source_silent_resolved"


class LogSink:
    """One JSON log line per alert, with all its fields."""

    name = "log"
    durable = False

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[Ack]:
        """Log each alert."""
        for alert in alerts:
            log.warning(log_event(alert), extra=fields(**msgspec.structs.asdict(alert)))
        return []
