"""The producer of the service's outputs and of its sources' records: sends acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumer.errors import OutputError
from consumer.kafka.connection import Client

# the shapes of consumer.daemon.ports, which this adapter satisfies without importing it
Headers = Sequence[tuple[str, bytes]]


class TopicProducer(Client):
    """A producer for the service's outputs (alerts, dead letters); sends are acknowledged."""

    async def start(self) -> None:
        """Connect; does nothing once started."""
        if self._started is not None:
            return
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # the daemon waits for the acks of every batch: lingering only delays
            max_batch_size=262_144,  # the state changelog writes thousands of records a batch
            max_request_size=max(1_048_576, self.settings.dead_letter_max_value_bytes + 65_536),
            **self._options,
        )
        await self._start(producer, "connecting the producer")

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record; the returned future resolves when the broker acknowledged it."""
        try:
            future: asyncio.Future[Any] = await self._client.send(
                topic,
                value=value,
                key=key,
                headers=list(headers),
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except KafkaError as exc:
            raise OutputError(f"producing to {topic}: {type(exc).__name__}: {exc}") from exc
        return future

    async def send_many(
        self,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
        headers: Sequence[Headers] = (),
    ) -> list[asyncio.Future[Any]]:
        """Queue (key, value) records to one partition, packed into as few batches as fit.

        ``headers``, when given, has each record's headers, in order. Much cheaper per
        record than :meth:`send`, which is what the state changelog (one write per
        interaction a batch changed) and dead letters need.
        """
        acks: list[asyncio.Future[Any]] = []
        try:
            batch = self._client.create_batch()
            for i, (key, value) in enumerate(records):
                pairs = list(headers[i]) if headers else None
                if batch.append(key=key, value=value, timestamp=None, headers=pairs) is None:
                    # full: send it, and a fresh one takes any record
                    acks.append(await self._client.send_batch(batch, topic, partition=partition))
                    batch = self._client.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=pairs)
            if batch.record_count():
                acks.append(await self._client.send_batch(batch, topic, partition=partition))
        except KafkaError as exc:
            raise OutputError(f"producing to {topic}: {type(exc).__name__}: {exc}") from exc
        return acks

    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (a heartbeat goes to each)."""
        try:
            found = await self._client.partitions_for(topic)
        except KafkaError as exc:
            raise OutputError(f"partitions of {topic}: {type(exc).__name__}: {exc}") from exc
        if not found:  # never a count of 0: callers spread records over it
            raise OutputError(f"partitions of {topic}: none known")
        return len(found)

    async def confirm(self, acks: Iterable[asyncio.Future[Any]]) -> None:
        """Wait until every send in ``acks`` was acknowledged; :class:`OutputError` if not."""
        try:
            await asyncio.gather(*acks)
        except KafkaError as exc:
            raise OutputError(f"not acknowledged: {type(exc).__name__}: {exc}") from exc
