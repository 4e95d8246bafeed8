"""Dead letters: invalid records, produced to their own topic with the reason.

The dead-letter record keeps the original key and value bytes, so nothing is lost and
a fixed record can be re-published as it was. Headers say why and where from:

==========================  ===============================================
``dlq.reason``              fixed code: ``not_utf8``, ``not_json``, ``too_deep``,
                            ``not_object``, ``invalid_field``, ``missing_id``, ``too_large``
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
"""

from __future__ import annotations

import asyncio
from typing import Any

from consumer.adapters.kafka import Record, Sink
from consumer.engine.model import Invalid


def headers(record: Record, invalid: Invalid, truncated: bool) -> list[tuple[str, bytes]]:
    """The dead-letter headers for ``record``."""
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


class DeadLetters:
    """Produces invalid records to the dead-letter topic."""

    def __init__(self, sink: Sink, topic: str, max_value_bytes: int) -> None:
        self._sink = sink
        self.topic = topic
        self.max_value_bytes = max_value_bytes

    async def publish(self, record: Record, invalid: Invalid) -> asyncio.Future[Any]:
        """Produce one dead letter; the future completes when the broker acknowledged it."""
        value = record.value
        truncated = value is not None and len(value) > self.max_value_bytes
        if truncated:
            assert value is not None
            value = value[: self.max_value_bytes]
        return await self._sink.send(
            self.topic, record.key, value, headers(record, invalid, truncated)
        )
