"""Background tasks: a failure is logged and counted, then restarted or stops the daemon."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry, Counter

from consumer.backoff import Backoff
from consumer.daemon.records import Partition
from consumer.daemon.supervise import Supervisor, TaskFailedError
from consumer.settings.schema import AlertmanagerSettings
from consumer.sinks.alertmanager import AlertmanagerSink
from consumer.testing.fakes import FakeStateReader
from consumer.testing.logs import capture_logs, events_named
from consumer.testing.rig import STATE, Rig, preview, until
from tests.unit.am_double import alertmanager
from tests.unit.sinks.test_alertmanager_sink import firings


def supervisor(stopped: list[str]) -> tuple[Supervisor, CollectorRegistry]:
    """A supervisor with fast back-off whose stop request is noted in ``stopped``."""
    registry = CollectorRegistry()
    counter = Counter("dialer_task_failures", "test", ["task"], registry=registry)
    sup = Supervisor(counter, lambda: stopped.append("stop"), lambda: Backoff(0.001, 0.01))
    return sup, registry


def failures(registry: CollectorRegistry, task: str) -> float:
    """Failures counted for ``task``."""
    return registry.get_sample_value("dialer_task_failures_total", {"task": task}) or 0.0


def test_a_restarting_task_that_raises_is_logged_counted_and_run_again() -> None:
    """Restart rule: each failure is logged with its traceback and counted; it runs again."""
    stopped: list[str] = []
    sup, registry = supervisor(stopped)
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("boom")

    async def scenario() -> None:
        await asyncio.wait_for(sup.start("probe", flaky, "restart"), 5)

    with capture_logs(logging.ERROR) as events:
        asyncio.run(scenario())
    assert runs == [0, 1, 2]
    assert failures(registry, "probe") == 2
    lines = events_named(events, "task_failed")
    assert len(lines) == 2
    assert all("RuntimeError: boom" in e["exception"] for e in lines)
    assert stopped == []
    assert sup.failed is None


def test_a_stopping_task_that_raises_stops_the_daemon_once_and_is_not_rerun() -> None:
    """Stop rule: the failure is counted, the daemon asked to stop, the task not run again."""
    stopped: list[str] = []
    sup, registry = supervisor(stopped)
    runs: list[int] = []

    async def broken() -> None:
        runs.append(1)
        raise OverflowError("cannot convert float infinity to integer")

    async def scenario() -> None:
        await asyncio.wait_for(sup.start("restore", broken, "stop", partition="t[0]"), 5)
        await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert runs == [1]
    assert stopped == ["stop"]
    assert failures(registry, "restore") == 1
    assert sup.failed is not None
    assert sup.failed.task == "restore"
    assert "OverflowError" in str(sup.failed)


def test_a_started_task_has_a_failure_series_at_zero() -> None:
    """Every supervised task's failure counter exists from its start, at 0."""
    sup, registry = supervisor([])

    async def fine() -> None:
        return None

    async def scenario() -> None:
        await sup.start("commit", fine, "stop")

    asyncio.run(scenario())
    assert registry.get_sample_value("dialer_task_failures_total", {"task": "commit"}) == 0


class BrokenReader(FakeStateReader):
    """A state reader with a bug: reading raises something no restore can skip."""

    async def read(self, *args: object, **kwargs: object) -> dict[bytes, bytes | None]:
        """Raise, as a bug would."""
        raise KeyError("a bug")


def test_a_restore_that_raises_stops_the_daemon_with_task_failed() -> None:
    """Restore: a failure it cannot skip stops the daemon (TaskFailedError), counted, not hung."""
    rig = Rig()
    rig.send(preview("a", created=0), key="a", at=0)
    daemon = rig.daemon()
    daemon.state_reader = BrokenReader(rig.producer, STATE)

    with pytest.raises(TaskFailedError, match="restore"):
        asyncio.run(asyncio.wait_for(daemon.run(), 5))
    assert rig.sample("dialer_task_failures_total", {"task": "restore"}) == 1
    assert rig.consumer.committed == {}


def test_the_alertmanager_poster_that_raises_is_restarted_and_posts() -> None:
    """The Alertmanager sink's poster, started through the supervisor, survives a failure."""
    stopped: list[str] = []
    sup, registry = supervisor(stopped)

    async def scenario() -> set[str]:
        async with alertmanager() as fake:
            sink = AlertmanagerSink(AlertmanagerSettings(urls=[fake.url]), CollectorRegistry())
            flush = sink._flush
            calls: list[int] = []

            async def fails_once() -> bool:
                calls.append(1)
                if len(calls) == 1:
                    raise RuntimeError("a bug in the poster")
                return await flush()

            sink._flush = fails_once  # type: ignore[method-assign]
            sink.start(lambda name, run: sup.start(name, run, "restart"))
            (alert,) = firings(1)
            await sink.publish([alert])
            await fake.until({alert.interaction_id})
            await sink.stop()
            return fake.interactions()

    assert asyncio.run(scenario()) == {"i-0"}
    assert failures(registry, "alertmanager-sink") == 1
    assert stopped == []


def test_a_commit_that_raises_stops_the_daemon_and_a_probe_that_raises_is_restarted() -> None:
    """Daemon wiring: the probe restarts after a failure; a raising commit stops the daemon."""
    rig = Rig()
    rig.send(preview("a", created=0), key="a", at=0)
    probes: list[int] = []
    reachable, commit = rig.consumer.reachable, rig.consumer.commit

    async def probe_fails_once(timeout: float) -> bool:
        probes.append(1)
        if len(probes) == 1:
            raise RuntimeError("a bug in the probe")
        return await reachable(timeout)

    async def commit_fails(offsets: Mapping[Partition, int]) -> bool:
        if len(probes) < 2:  # the probe not restarted yet
            return await commit(offsets)
        raise RuntimeError("a bug in the commit")

    rig.consumer.reachable = probe_fails_once  # type: ignore[method-assign]
    rig.consumer.commit = commit_fails  # type: ignore[method-assign]
    daemon = rig.daemon()

    async def scenario() -> None:
        task = asyncio.create_task(daemon.run())
        await until(lambda: len(probes) >= 2)  # restarted after its back-off (1 s)
        rig.send(preview("b", created=1), key="b", at=1)
        rig.clock.advance(6)  # its state is saved: its offset is committed, which raises
        await asyncio.wait_for(task, 10)

    with pytest.raises(TaskFailedError, match="commit"):
        asyncio.run(scenario())
    assert rig.sample("dialer_task_failures_total", {"task": "broker-probe"}) == 1
    assert rig.sample("dialer_task_failures_total", {"task": "commit"}) >= 1
