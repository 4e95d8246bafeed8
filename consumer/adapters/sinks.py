"""Alert sinks: where stall alerts go; pluggable.

A durable sink returns, for the alerts it was handed, futures that complete once they
are stored; the runner commits input offsets only after all of them completed, and
hands the batch's alerts over again if they failed (same ``alertId``). A sink that is
not durable (a log, a best-effort HTTP push) is handed each alert once, returns nothing,
and must bound its own queue so that it never holds consumption up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from consumer.adapters.alerts import Alert, encode_alert
from consumer.adapters.kafka import Sink
from consumer.adapters.logs import fields

log = logging.getLogger("consumer.alerts")  # a stable name operators filter alert lines on


class AlertSink(Protocol):
    """Somewhere alerts go."""

    name: str
    durable: bool

    async def publish(self, alerts: Sequence[Alert]) -> list[asyncio.Future[Any]]:
        """Hand alerts over; a durable sink's futures complete when they are stored."""
        ...


class LogSink:
    """One JSON log line per alert (``stall_firing`` / ``stall_resolved``)."""

    name = "log"
    durable = False

    async def publish(self, alerts: Sequence[Alert]) -> list[asyncio.Future[Any]]:
        """Log each alert with all its fields."""
        for alert in alerts:
            log.warning(f"stall_{alert.status}", extra=fields(**msgspec.structs.asdict(alert)))
        return []


class TopicSink:
    """Alerts produced to a topic, keyed by interaction id, value the alert record."""

    name = "topic"
    durable = True

    def __init__(self, sink: Sink, topic: str) -> None:
        self._sink = sink
        self.topic = topic

    async def publish(self, alerts: Sequence[Alert]) -> list[asyncio.Future[Any]]:
        """Produce each alert; the futures complete when the broker acknowledged them."""
        return [
            await self._sink.send(self.topic, a.interaction_id.encode(), encode_alert(a))
            for a in alerts
        ]
