"""The poller's topic read back at a restart: what ended meanwhile is tombstoned."""

from __future__ import annotations

import logging
from collections.abc import Callable

from consumer.errors import BrokerError
from consumer.testing.logs import capture_logs, events_named
from tests.unit.platform_rig import (
    TOPIC,
    Platform,
    interaction,
    run,
    tombstoned,
)


def test_restarted_poller_tombstones_what_ended_while_it_was_down() -> None:
    """A new process rebuilds what was published from the topic; what ended meanwhile goes."""
    ready: list[list[str]] = []

    async def scenario(p: Platform) -> None:
        for iid in ("ended", "stays"):
            p.dialer.put("c-1", interaction(iid, campaign={"id": "c-1"}), "previewing")
        await p.poller.run(rounds=1)
        p.dialer.end("ended")  # while no poller runs
        published = len(p.publisher.on(TOPIC))
        poller = p.restart()
        ready.append(poller.readiness())
        await poller.run(rounds=2)
        ready.append(poller.readiness())
        assert len(p.publisher.on(TOPIC)) == published + 1  # "stays" is not sent again

    p = run(scenario)
    assert ready[0] == ["rebuilding what was published from interactions"]
    assert ready[1] == []
    assert tombstoned(p) == [b"ended"]


def test_restart_tombstones_the_interactions_of_a_campaign_that_stopped_meanwhile() -> None:
    """Published before a restart, its campaign listed off after: tombstoned at discovery."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "interacting")
        await p.poller.run(rounds=1)
        p.dialer.set_status("c-1", "off")
        await p.restart().run(rounds=1)

    p = run(scenario)
    assert tombstoned(p) == [b"i-1"]


def test_rebuild_is_retried_and_nothing_is_published_before_it_completes() -> None:
    """The topic unreadable at start: retried, unready meanwhile, no record sent before."""
    sent_while_failing: list[int] = []

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "pending")
        poller = p.restart()
        history = poller.history
        assert history is not None
        original = history.read
        failures = iter([True, True])

        async def flaky(
            partition: int, progress: Callable[[int], None]
        ) -> dict[bytes, bytes | None]:
            if next(failures, False):
                sent_while_failing.append(len(p.publisher.topics))
                assert poller.readiness() == ["rebuilding what was published from interactions"]
                raise BrokerError("reading interactions[0]: unreachable")
            return await original(partition, progress)

        history.read = flaky  # type: ignore[method-assign]
        await poller.run(rounds=1)

    with capture_logs(logging.WARNING) as events:
        p = run(scenario)
    assert sent_while_failing == [0, 0]
    assert len(events_named(events, "rebuild_failed")) == 2
    assert [r.key for r in p.publisher.on(TOPIC)] == [b"i-1"]
