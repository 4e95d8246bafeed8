"""Topics read outside any consumer group: a compacted topic followed, a changelog read back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from consumer.kafka.errors import translate
from consumer.kafka.options import client_options
from consumer.settings.schema import KafkaSettings


class TopicFollower:
    """A compacted topic read from its start and then followed, outside any group.

    Every instance reads the whole topic (campaign settings concern every partition). A
    topic that does not exist yet (no poller publishes it) is looked for again every
    :data:`LOOK_AGAIN` seconds, without subscribing to it: aiokafka logs a missing
    subscribed topic at ERROR, and an absent poller is no error.
    """

    LOOK_AGAIN: Final = 10.0

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: Any = None
        self._looked = float("-inf")

    async def changes(self, timeout: float) -> list[tuple[bytes, bytes | None]]:
        """(key, value) of the records read since the last call, waiting up to ``timeout``."""
        try:
            if self._consumer is None and not await self._subscribe():
                await asyncio.sleep(timeout)
                return []
            batch = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        except (KafkaError, OSError) as exc:
            raise translate(exc, f"following {self.topic}", self.settings) from exc
        return [(r.key, r.value) for rs in batch.values() for r in rs if r.key is not None]

    async def _subscribe(self) -> bool:
        """Subscribe once the topic exists; ``False`` while it does not (looked for anew)."""
        now = time.monotonic()
        if now - self._looked < self.LOOK_AGAIN:
            return False
        self._looked = now
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.settings),
        )
        try:
            await consumer.start()
            present = self.topic in await consumer.topics()
        except BaseException:
            await consumer.stop()  # never left unclosed: aiokafka would log it at ERROR
            raise
        if not present:
            await consumer.stop()
            return False
        consumer.subscribe([self.topic])
        self._consumer = consumer
        return True

    async def stop(self) -> None:
        """Close."""
        if self._consumer is not None:
            await self._consumer.stop()


class ChangelogReader:
    """Reads one partition of a compacted changelog back: the latest value per key."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic

    async def read(
        self,
        partition: int,
        progress: Callable[[int], None],
        offsets: dict[bytes, int] | None = None,
    ) -> dict[bytes, bytes | None]:
        """The latest value per key from the partition's start to its current end.

        ``progress`` hears how many records were read after each fetch; ``offsets``, when
        given, gets the offset of the latest value of each key already in it.
        """
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.settings),
        )
        tp = TopicPartition(self.topic, partition)
        latest: dict[bytes, bytes | None] = {}
        try:
            await consumer.start()
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in batch.get(tp, ()):
                    if record.key is not None:
                        latest[record.key] = record.value
                        if offsets is not None and record.key in offsets:
                            offsets[record.key] = record.offset
                progress(sum(len(records) for records in batch.values()))
        except KafkaError as exc:
            raise translate(exc, f"reading {self.topic}[{partition}]", self.settings) from exc
        finally:
            await consumer.stop()
        return latest
