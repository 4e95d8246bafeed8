"""The daemon's seams: what it needs of the outside world, as protocols.

The loop (:mod:`consumer.daemon.loop`) is given one of each and never imports a client
library. The real ones are the adapters (the modules of :mod:`consumer.kafka` and others);
:mod:`consumer.testing.fakes` has in-memory ones for tests, with acknowledgements that can
be made to fail or hang. Everything the loop awaits goes through these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from consumer.daemon.records import Batch, Headers, Partition, StateRecord
from consumer.formats.alerts import AnyAlert

Ack = asyncio.Future[Any]
Rebalance = Callable[[list[Partition]], Awaitable[None]]


class Consumer(Protocol):
    """The input topic(s), read in a consumer group with manual commits."""

    async def start(self, topics: list[str], revoked: Rebalance, assigned: Rebalance) -> None:
        """Connect and subscribe; the callbacks run on every rebalance."""

    async def fetch(self, timeout: float, limit: int) -> Batch:
        """One batch per partition; empty after ``timeout`` seconds of nothing."""
        ...

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as of the last fetch answer, ``None`` before one."""

    def confirmed_at(self, partition: Partition) -> float | None:
        """Wall time of the last fetch answer for ``partition`` (``None`` before one)."""

    async def position(self, partition: Partition) -> int:
        """The offset of the next record to read."""
        ...

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching from ``partitions``."""

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch from ``partitions`` again."""

    async def commit(self, offsets: Mapping[Partition, int]) -> bool:
        """Commit next-offsets; ``False`` when it could not (retried with the next batch)."""
        ...

    async def reachable(self, timeout: float) -> bool:
        """Whether a broker answers within ``timeout`` seconds."""
        ...

    async def stop(self) -> None:
        """Leave the group and close."""


class Publisher(Protocol):
    """What a source (``poll``, ``simulate --topic``) needs of a producer.

    Each send's future resolves when the broker acknowledged it.
    """

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


class Producer(Publisher, Protocol):
    """Writes the daemon's outputs (sources write through the :class:`Publisher` part)."""

    async def start(self) -> None:
        """Connect."""

    async def send_many(
        self,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
        headers: Sequence[Headers] = (),
    ) -> list[Ack]:
        """Queue (key, value) records to one partition, packed together.

        ``headers``, when given, has each record's headers, in order.
        """
        ...

    async def stop(self) -> None:
        """Flush and close."""


class StateReader(Protocol):
    """Reads one partition of the state changelog back (latest value per key)."""

    async def read(
        self,
        partition: int,
        progress: Callable[[int], None],
        offsets: dict[bytes, int] | None = None,
    ) -> dict[bytes, bytes | None]:
        """The latest value per key; ``progress`` hears records read so far.

        ``offsets``, when given, gets the offset of the latest value of each key already in
        it (to name records that could not be restored).
        """
        ...


class Follower(Protocol):
    """A compacted topic read from its start and followed, by every instance whole."""

    async def changes(self, timeout: float) -> list[StateRecord]:
        """(key, value) records read since the last call; waits up to ``timeout`` for some."""
        ...

    async def stop(self) -> None:
        """Close."""


class Clock(Protocol):
    """The daemon's two clocks: the wall clock (judgement) and a monotonic one (health)."""

    def wall(self) -> float:
        """Epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        ...


class AlertSink(Protocol):
    """Somewhere alerts go.

    A durable sink returns futures that complete once the alerts are stored; offsets are
    committed only after all of them completed, and the batch's alerts are handed over
    again if they failed (same ``alertId``). A sink that is not durable (a log, a
    best-effort HTTP push) is handed each alert once, returns nothing, and bounds its own
    queue so that it never holds consumption up.
    """

    name: str
    durable: bool

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[Ack]:
        """Hand alerts over; a durable sink's futures complete when they are stored."""
        ...


@runtime_checkable
class LiveSink(AlertSink, Protocol):
    """A sink that keeps alerts alive by re-sending them (Alertmanager): it follows ownership.

    Only the owner of a partition speaks for its alerts. When a partition is assigned and
    restored, its firing alerts are announced; when it is given up, the ids no other
    partition of this instance still owns are forgotten. The other sinks write events once
    (a log line, a record): there is nothing to keep alive or take back.
    """

    async def announce(self, alerts: Sequence[AnyAlert]) -> None:
        """``alerts`` (firing) are this instance's to keep alive now: send them soon."""

    async def forget(self, alert_ids: Collection[str]) -> None:
        """Send nothing more for ``alert_ids``; returns once no post carrying them is in flight."""


class SystemClock:
    """The real clocks."""

    def wall(self) -> float:
        """Epoch seconds."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()
