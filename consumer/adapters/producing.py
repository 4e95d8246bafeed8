"""What the sources (``poll``, ``simulate --topic``) need of a producer, and heartbeats.

:class:`Publisher` is the part of :class:`consumer.adapters.kafka.Sink` a source uses
(idempotent, ``acks=all``); unit tests pass a fake. :func:`send_heartbeats` sends one
heartbeat record to every partition of a topic in the format of
:mod:`consumer.engine.heartbeat`, so that a consumer of any partition hears that the
source is alive and has published everything up to ``up_to``. :class:`History` is what
the poller reads its own topic back with (a
:class:`~consumer.adapters.kafka.ChangelogReader`; unit tests pass a fake).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from consumer.adapters.kafka import Headers
from consumer.engine import heartbeat


class Publisher(Protocol):
    """Produces records; each send's future resolves when the broker acknowledged it."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record (``value`` ``None``: a tombstone)."""
        ...

    async def confirm(self, acks: Iterable[asyncio.Future[Any]]) -> None:
        """Wait for the acknowledgements; :class:`~consumer.errors.OutputError` if refused."""
        ...

    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has."""
        ...


class History(Protocol):
    """Reads one partition of a compacted topic back: the latest value per key."""

    async def read(
        self, partition: int, progress: Callable[[int], None]
    ) -> dict[bytes, bytes | None]:
        """The latest value per key from the partition's start to its current end."""
        ...


async def send_heartbeats(
    publisher: Publisher, topic: str, source: str, up_to: float, interval_seconds: float
) -> int:
    """One acknowledged heartbeat on every partition of ``topic``; returns how many."""
    value = heartbeat.encode(source, up_to, interval_seconds)
    headers = [(heartbeat.HEADER, source.encode())]
    count = await publisher.partitions(topic)
    acks = [
        await publisher.send(topic, source.encode(), value, headers, partition=partition)
        for partition in range(count)
    ]
    await publisher.confirm(acks)
    return count
