"""The daemon's outputs as records: alert sinks and dead letters.

Alert sinks (:class:`~consumer.daemon.ports.AlertSink`): the log (one line per alert, not
durable) and the alerts topic (keyed by interaction id, or by source id for a silent
source; durable). The Alertmanager sink lives in :mod:`consumer.adapters.alertmanager`.

Dead letters keep the original key and value bytes, so nothing is lost and a fixed record
can be re-published as it was. Headers say why and where from:

==========================  ===============================================
``dlq.reason``              fixed code: ``not_utf8``, ``not_json``, ``too_deep``,
                            ``not_object``, ``invalid_field``, ``missing_id``,
                            ``too_large``, ``engine_error``
``dlq.error``               one line naming the field (no record content)
``dlq.source.topic``        topic the record was read from
``dlq.source.partition``    its partition (decimal)
``dlq.source.offset``       its offset (decimal)
``dlq.source.timestamp``    its timestamp, epoch milliseconds (decimal)
``dlq.original.size``       size of the original value in bytes (decimal)
``dlq.truncated``           ``true`` when the value was cut to fit the broker
==========================  ===============================================

A value larger than ``kafka.dead_letter_max_value_bytes`` cannot be re-produced to a
broker with default limits; its copy is cut to that size and marked truncated.

The dead letters of input partition ``p`` go to partition ``p`` modulo the dead-letter
topic's partition count, in their input order, packed into producer batches (one
``send`` each cost a few per cent of the daemon's time at 2-3% malformed records).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec

from consumer.adapters.alerts import Alert, AnyAlert, encode_alert
from consumer.adapters.logs import fields
from consumer.daemon.outputs import DeadLetter
from consumer.daemon.ports import Ack, Producer

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


class TopicSink:
    """Alerts produced to a topic, keyed by interaction (or source) id."""

    name = "topic"
    durable = True

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[Ack]:
        """Produce each alert; the futures complete when the broker acknowledged them."""
        acks = []
        for alert in alerts:
            key = alert.interaction_id if isinstance(alert, Alert) else alert.source_id
            acks.append(await self._producer.send(self.topic, key.encode(), encode_alert(alert)))
        return acks


def dead_letter_headers(letter: DeadLetter, truncated: bool) -> list[tuple[str, bytes]]:
    """The dead-letter headers for one invalid record."""
    record, invalid = letter
    size = 0 if record.value is None else len(record.value)
    pairs = [
        ("dlq.reason", invalid.reason),
        ("dlq.error", invalid.detail),
        ("dlq.source.topic", record.topic),
        ("dlq.source.partition", str(record.partition)),
        ("dlq.source.offset", str(record.offset)),
        ("dlq.source.timestamp", str(record.timestamp)),
        ("dlq.original.size", str(size)),
    ]
    if truncated:
        pairs.append(("dlq.truncated", "true"))
    return [(name, value.encode()) for name, value in pairs]


async def send_dead_letters(
    producer: Producer,
    topic: str,
    partitions: int,
    letters: Sequence[DeadLetter],
    max_value_bytes: int,
) -> list[Ack]:
    """Produce dead letters to a topic of ``partitions``; acks complete when acknowledged."""
    grouped: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        grouped.setdefault(letter.record.partition % partitions, []).append(letter)
    acks: list[Ack] = []
    for partition, group in grouped.items():
        records: list[tuple[bytes | None, bytes | None]] = []
        headers = []
        for letter in group:
            value = letter.record.value
            truncated = value is not None and len(value) > max_value_bytes
            if value is not None and truncated:
                value = value[:max_value_bytes]
            records.append((letter.record.key, value))
            headers.append(dead_letter_headers(letter, truncated))
        acks += await producer.send_many(topic, partition, records, headers)
    return acks
