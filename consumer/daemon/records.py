"""The shapes of what a fetch hands the daemon: partitions and records. Pure data.

Shared by the pure batch step and the protocols of :mod:`consumer.daemon.ports`; aiokafka's
``ConsumerRecord`` and the fakes' records both fit :class:`Record`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

Partition = tuple[str, int]
Headers = Sequence[tuple[str, bytes]]
# (interaction id, saved state or None for a tombstone), as written to the changelog
StateRecord = tuple[bytes, bytes | None]


class Record(Protocol):
    """What the daemon reads of a consumed record (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch milliseconds; 0 or less: none
    key: bytes | None
    value: bytes | None
    headers: Headers


# one fetch: the records read, per partition
Batch = Mapping[Partition, Sequence[Record]]
