"""The daemon's plan of output topics, on a recording stand-in for topic creation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from consumer.daemon.topics import ensure_outputs
from consumer.settings.schema import KafkaSettings


class Recorded:
    """Every call to create topics, as (names, partitions, keyword options)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int, dict[str, Any]]] = []

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
        options = {"compact": compact, "partitions_like": partitions_like, "setting": setting}
        self.calls.append((list(names), partitions, options))


def planned(settings: KafkaSettings) -> list[tuple[list[str], int, dict[str, Any]]]:
    """The topic creations ``ensure_outputs`` asks for under ``settings``."""
    recorded = Recorded()
    asyncio.run(ensure_outputs(settings, recorded))
    return recorded.calls


def test_nothing_is_created_when_create_topics_is_off() -> None:
    """With kafka.create_topics false no topic is created."""
    assert planned(KafkaSettings(create_topics=False)) == []


def test_alerts_dead_letters_and_a_changelog_sized_like_the_input() -> None:
    """Alerts and dead letters get three partitions; the compacted changelog matches the input."""
    settings = KafkaSettings(topic="in", group_id="g")
    assert planned(settings) == [
        (
            [settings.alerts_topic, settings.dead_letter_topic],
            3,
            {"compact": False, "partitions_like": None, "setting": ""},
        ),
        (
            [settings.state_topic_name],
            0,
            {"compact": True, "partitions_like": "in", "setting": "kafka.state_topic"},
        ),
    ]


def test_repartitioning_sizes_the_changelog_like_the_repartition_topic() -> None:
    """The repartition topic is sized like the input, the changelog like the repartition topic."""
    settings = KafkaSettings(topic="in", group_id="g", repartition=True, persist_state=True)
    calls = planned(settings)
    assert calls[1] == (
        ["g.repartition"],
        0,
        {"compact": False, "partitions_like": "in", "setting": "kafka.repartition_topic"},
    )
    assert calls[2] == (
        [settings.state_topic_name],
        0,
        {"compact": True, "partitions_like": "g.repartition", "setting": "kafka.state_topic"},
    )
