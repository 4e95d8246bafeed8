"""The dead-letter record: an input record that cannot be tracked, as the topic holds it.

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

from consumer.engine.model import Invalid


def headers(
    invalid: Invalid,
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    size: int,
    truncated: bool,
) -> list[tuple[str, bytes]]:
    """The dead-letter headers of one invalid record read from ``topic``."""
    pairs = [
        ("dlq.reason", invalid.reason),
        ("dlq.error", invalid.detail),
        ("dlq.source.topic", topic),
        ("dlq.source.partition", str(partition)),
        ("dlq.source.offset", str(offset)),
        ("dlq.source.timestamp", str(timestamp)),
        ("dlq.original.size", str(size)),
    ]
    if truncated:
        pairs.append(("dlq.truncated", "true"))
    return [(name, value.encode()) for name, value in pairs]
