"""In-memory doubles of the daemon's ports, shipped with the package for tests.

With them the loop's guarantees (what is committed when, what survives a crash, a refused
output, a rebalance) are tested in milliseconds without a broker: a :class:`FakeConsumer`
holds scripted partitions and remembers commits, a :class:`FakeProducer` keeps what was
acknowledged and can be told to refuse or hold a topic's writes, a
:class:`FakeStateReader` reads the producer's changelog back, and a :class:`FakeClock` is
moved by hand. Run the daemon with ``run(until_idle=True)``: it drains what there is and
returns. Integration tests use the real adapters on a real broker instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.daemon.ports import Ack, Rebalance
from consumer.daemon.records import Batch, Headers, Partition, StateRecord
from consumer.errors import BrokerError, OutputError


@dataclass
class FakeRecord:
    """A consumed (or produced) record."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch milliseconds
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class FakeClock:
    """A wall clock and a monotonic clock that move only when told."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.now = wall
        self._monotonic = 1000.0

    def wall(self) -> float:
        """Epoch seconds."""
        return self.now

    def monotonic(self) -> float:
        """Seconds, never going back."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks."""
        self.now += seconds
        self._monotonic += seconds


@dataclass
class FakeConsumer:
    """Partitions of scripted records, read in order, with commits remembered.

    ``answering`` false is a broker that went away: fetches return nothing and the
    partitions' last-answer times stop moving. ``refuse_start`` makes ``start`` fail (an
    :class:`~consumer.errors.AuthenticationError` is final, other broker errors are retried).
    """

    topic: str
    clock: FakeClock
    partitions: int = 1
    answering: bool = True
    refuse_start: BrokerError | None = None
    refuse_commits: bool = False  # commits fail (a rebalance in the way, a crash before)
    committed: dict[Partition, int] = field(default_factory=dict)
    commits: list[dict[Partition, int]] = field(default_factory=list)
    logs: dict[Partition, list[FakeRecord]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in range(self.partitions):
            self.logs.setdefault((self.topic, p), [])
        self._positions: dict[Partition, int] = {}
        self._highwater: dict[Partition, int] = {}
        self._answered: dict[Partition, float] = {}
        self._paused: set[Partition] = set()
        self._assigned: list[Partition] = []
        self._callbacks: tuple[Rebalance, Rebalance] | None = None

    def produce(
        self,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int = 0,
        timestamp: float | None = None,
        headers: Headers = (),
    ) -> int:
        """Append a record (timestamp in epoch seconds, default now); returns its offset."""
        log = self.logs[self.topic, partition]
        moment = self.clock.wall() if timestamp is None else timestamp
        log.append(
            FakeRecord(self.topic, partition, len(log), int(moment * 1000), key, value, headers)
        )
        return len(log) - 1

    async def start(self, topics: list[str], revoked: Rebalance, assigned: Rebalance) -> None:
        """Subscribe: every partition is assigned to this one consumer."""
        if self.refuse_start is not None:
            raise self.refuse_start
        self._callbacks = (revoked, assigned)
        await self.rebalance(assign=sorted(self.logs))

    async def rebalance(
        self, *, revoke: Sequence[Partition] = (), assign: Sequence[Partition] = ()
    ) -> None:
        """What a group rebalance does: the listener hears the revocation, then the assignment."""
        assert self._callbacks is not None, "not started"
        revoked, assigned = self._callbacks
        if revoke:
            await revoked(list(revoke))
            self._assigned = [tp for tp in self._assigned if tp not in revoke]
        if assign:
            for tp in assign:
                self._positions[tp] = self.committed.get(tp, 0)
            self._assigned += list(assign)
            await assigned(list(assign))

    async def fetch(self, timeout: float, limit: int) -> Batch:
        """What is there to read (up to ``limit``), or nothing after a moment's wait."""
        await asyncio.sleep(0)
        if not self.answering:
            await asyncio.sleep(0.001)
            return {}
        batch: dict[Partition, list[FakeRecord]] = {}
        for tp in self._assigned:
            self._answered[tp] = self.clock.wall()
            log = self.logs[tp]
            self._highwater[tp] = len(log)
            if tp in self._paused or limit <= 0:
                continue
            start = self._positions[tp]
            records = log[start : start + limit]
            if records:
                batch[tp] = records
                self._positions[tp] = start + len(records)
                limit -= len(records)
        if not batch:
            await asyncio.sleep(0.001)  # a real fetch waits: keep an idle loop from spinning
        return batch

    def highwater(self, partition: Partition) -> int | None:
        """The end offset as of the last fetch."""
        return self._highwater.get(partition)

    def confirmed_at(self, partition: Partition) -> float | None:
        """When the broker last answered for ``partition``: now, while it answers.

        A real broker answers an idle partition's fetch every half second; the fake clock
        jumps, and a jump must not look like the broker going away.
        """
        if self.answering and partition in self._answered:
            return self.clock.wall()
        return self._answered.get(partition)

    async def position(self, partition: Partition) -> int:
        """The next offset to read."""
        return self._positions[partition]

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop reading ``partitions``."""
        self._paused.update(partitions)

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Read ``partitions`` again."""
        self._paused.difference_update(partitions)

    async def commit(self, offsets: Mapping[Partition, int]) -> bool:
        """Remember ``offsets`` as committed (refused while the broker is away)."""
        if not self.answering or self.refuse_commits:
            return False
        self.commits.append(dict(offsets))
        self.committed.update(offsets)
        return True

    async def reachable(self, timeout: float) -> bool:
        """Whether the broker answers."""
        return self.answering

    async def stop(self) -> None:
        """Leave: nothing is assigned any more."""
        self._assigned = []


@dataclass
class FakeProducer:
    """Topics of acknowledged records; a topic can refuse writes or hold their acks.

    A record is in :attr:`topics` only once acknowledged. ``refusing`` topics (every topic,
    with ``refuse_all``) fail every send; ``holding`` topics leave their acks pending until
    :meth:`release`. Every topic has ``partition_count`` partitions.
    """

    topics: dict[str, list[FakeRecord]] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)
    refuse_all: bool = False
    partition_count: int = 3
    holding: set[str] = field(default_factory=set)
    _held: list[tuple[asyncio.Future[Any], Callable[[], None]]] = field(default_factory=list)

    async def start(self) -> None:
        """Nothing to connect."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Ack:
        """Queue one record; its ack resolves now, fails, or waits, as the topic is set."""
        ack: Ack = asyncio.get_running_loop().create_future()
        log = self.topics.setdefault(topic, [])

        def store() -> None:
            record = FakeRecord(
                topic, partition or 0, len(log), timestamp_ms or 0, key, value, headers
            )
            log.append(record)
            ack.set_result(record)

        if self.refuse_all or topic in self.refusing:
            ack.set_exception(OutputError(f"producing to {topic}: refused"))
        elif topic in self.holding:
            self._held.append((ack, store))
        else:
            store()
        return ack

    async def send_many(
        self,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
        headers: Sequence[Headers] = (),
    ) -> list[Ack]:
        """Queue (key, value) records to one partition, each with its headers if given."""
        return [
            await self.send(topic, key, value, headers[i] if headers else (), partition)
            for i, (key, value) in enumerate(records)
        ]

    async def confirm(self, acks: Iterable[Ack]) -> None:
        """Wait for every ack; :class:`OutputError` if one failed."""
        await asyncio.gather(*acks)

    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has."""
        return self.partition_count

    @property
    def held(self) -> int:
        """Records sent to a holding topic and not yet acknowledged."""
        return sum(not ack.done() for ack, _ in self._held)

    def release(self) -> None:
        """Stop holding: acknowledge every held record."""
        held, self._held = self._held, []
        self.holding.clear()
        for ack, store in held:
            if not ack.done():
                store()

    def values(self, topic: str) -> list[bytes | None]:
        """The acknowledged values of ``topic``, in order."""
        return [r.value for r in self.topics.get(topic, [])]

    async def stop(self) -> None:
        """Nothing to flush: acks are settled as they come."""


@dataclass
class FakeStateReader:
    """Reads the changelog the producer wrote back: the latest value per key."""

    producer: FakeProducer
    topic: str

    async def read(
        self,
        partition: int,
        progress: Callable[[int], None],
        offsets: dict[bytes, int] | None = None,
    ) -> dict[bytes, bytes | None]:
        """The latest value per key of one partition of the changelog."""
        latest: dict[bytes, bytes | None] = {}
        records = [r for r in self.producer.topics.get(self.topic, []) if r.partition == partition]
        for record in records:
            if record.key is not None:
                latest[record.key] = record.value
                if offsets is not None and record.key in offsets:
                    offsets[record.key] = record.offset
        progress(len(records))
        return latest


@dataclass
class FakeFollower:
    """A followed topic: records appended by the test are handed out once, in order."""

    pending: list[StateRecord] = field(default_factory=list)

    async def changes(self, timeout: float) -> list[StateRecord]:
        """What was appended since the last call, or nothing after a moment."""
        await asyncio.sleep(0.001)
        taken, self.pending = self.pending, []
        return taken

    async def stop(self) -> None:
        """Nothing to close."""
