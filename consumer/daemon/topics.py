"""The daemon's output topics: which it needs, and how each is sized and configured."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from consumer.settings.schema import KafkaSettings


class TopicCreator(Protocol):
    """Creates the topics that do not exist yet (:func:`consumer.kafka.admin.ensure_topics`)."""

    async def __call__(
        self,
        settings: KafkaSettings,
        names: Iterable[str],
        partitions: int,
        *,
        compact: bool = False,
        partitions_like: str | None = None,
        setting: str = "",
    ) -> None:
        """Create the missing ones among ``names`` with ``partitions`` partitions.

        ``partitions_like`` sizes them like that topic instead, and checks that those
        already there match it (a mismatch names ``setting``); ``compact`` compacts them.
        """


async def ensure_outputs(settings: KafkaSettings, ensure_topics: TopicCreator) -> None:
    """Create the daemon's missing output topics, when ``kafka.create_topics`` allows.

    Alerts and dead letters get three partitions; the repartition topic is sized like the
    input, and the state changelog like the topic whose partitions own interactions.
    """
    if not settings.create_topics:
        return
    await ensure_topics(settings, [settings.alerts_topic, settings.dead_letter_topic], 3)
    if settings.repartition:
        await ensure_topics(
            settings,
            [settings.repartition_topic_name],
            0,
            partitions_like=settings.topic,
            setting="kafka.repartition_topic",
        )
    if settings.persist_state:
        await ensure_topics(
            settings,
            [settings.state_topic_name],
            0,
            compact=True,
            partitions_like=settings.tracked_topic,
            setting="kafka.state_topic",
        )
