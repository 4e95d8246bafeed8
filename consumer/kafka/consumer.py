"""The group consumer: the interactions topic, read in a consumer group with manual commits.

Facts about aiokafka that shape this module (see CONTRIBUTING.md, "Kafka notes"):

* values are decoded by the caller, never in a ``value_deserializer``: an exception
  there makes aiokafka re-read the same record forever;
* commits are manual (``offset + 1`` of the last applied record): auto-commit would
  mark fetched but unprocessed records as done;
* ``on_partitions_revoked`` is not called on ``stop()``: the runner commits itself
  before stopping;
* position is asynchronous, so the runner keeps its own next offsets, and lag is
  ``highwater - next offset``.

:func:`compiled_records` says whether aiokafka parses the fetched records with its
compiled extension, which the consumer's throughput depends on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.record import default_records

from consumer.kafka.connection import Client
from consumer.kafka.errors import translate
from consumer.observe.logs import fields

log = logging.getLogger(__name__)

# the shapes of consumer.daemon.ports, which this adapter satisfies without importing it
Partition = tuple[str, int]
Batch = dict[Partition, list[ConsumerRecord[bytes, bytes]]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        revoked: Callable[[list[Partition]], Awaitable[None]],
        assigned: Callable[[list[Partition]], Awaitable[None]],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._assigned([(tp.topic, tp.partition) for tp in assigned])


class GroupConsumer(Client):
    """The interactions topic, read in a consumer group with manual commits."""

    async def start(
        self,
        topics: list[str],
        revoked: Callable[[list[Partition]], Awaitable[None]],
        assigned: Callable[[list[Partition]], Awaitable[None]],
    ) -> None:
        """Connect and subscribe to ``topics``; the callbacks run on every rebalance.

        Does nothing once started: a first connection that failed half way is retried whole.
        """
        if self._started is not None:
            return
        settings = self.settings
        consumer = AIOKafkaConsumer(
            group_id=settings.group_id,
            group_instance_id=settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 10),
            max_partition_fetch_bytes=max(1_048_576, settings.max_record_bytes + 1024),
            **self._options,
        )
        await self._start(consumer, "connecting the consumer")
        consumer.subscribe(topics, listener=_Listener(revoked, assigned))

    async def fetch(self, timeout: float, limit: int) -> Batch:
        """One batch of records per partition; empty after ``timeout`` seconds of nothing."""
        try:
            batch = await self._client.getmany(timeout_ms=int(timeout * 1000), max_records=limit)
        except KafkaError as exc:
            raise translate(exc, "fetching", self.settings) from exc
        return {(tp.topic, tp.partition): records for tp, records in batch.items()}

    async def position(self, partition: Partition) -> int:
        """The offset of the next record to read from ``partition``."""
        try:
            offset: int = await self._client.position(TopicPartition(*partition))
        except KafkaError as exc:
            raise translate(exc, f"reading the position of {partition}", self.settings) from exc
        return offset

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching from ``partitions`` (while their state is restored)."""
        self._client.pause(*(TopicPartition(*tp) for tp in partitions))

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch from ``partitions`` again."""
        self._client.resume(*(TopicPartition(*tp) for tp in partitions))

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as of the last fetch, or ``None`` before one."""
        value: int | None = self._client.highwater(TopicPartition(*partition))
        return value

    def confirmed_at(self, partition: Partition) -> float | None:
        """Wall time of the last fetch answer for ``partition``, empty ones included.

        aiokafka notes it for every answer without error (``last_poll_timestamp``): while
        the broker is away it stops moving, and so does a caught-up partition's clock.
        """
        millis: int | None = self._client.last_poll_timestamp(TopicPartition(*partition))
        return None if millis is None else millis / 1000.0

    async def commit(self, offsets: Mapping[Partition, int]) -> bool:
        """Commit next-offsets; ``False`` when a rebalance got in the way (retried later)."""
        if not offsets:
            return True
        try:
            await self._client.commit({TopicPartition(*tp): o for tp, o in offsets.items()})
        except KafkaError as exc:
            # a rebalance in the way (CommitFailedError) or the broker away: the offsets are
            # committed with the next batch, and redelivery meanwhile is harmless
            log.warning("commit_failed", extra=fields(error=f"{type(exc).__name__}: {exc}"))
            return False
        return True

    async def reachable(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request within ``timeout`` seconds.

        aiokafka has no health API and keeps returning empty fetches while the brokers are
        away, so readiness asks this directly.
        """
        try:
            await asyncio.wait_for(self._client.topics(), timeout)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True


def compiled_records() -> bool:
    """The compiled aiokafka record parser is in use (pure Python is several times slower)."""
    return "_crecords" in default_records.DefaultRecordBatch.__module__
