"""Heartbeat sources in the daemon loop on fakes: what a source vouches for, across restarts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from consumer.daemon.loop import Daemon
from consumer.engine.sources import SourceEvent
from consumer.formats import changelog, heartbeat
from consumer.formats.alerts import to_source_alert
from consumer.settings.schema import ConfigError
from consumer.testing.fakes import FakeClock, FakeRecord
from consumer.testing.rig import ALERTS, STATE, T0, TOPIC, Rig, preview, until
from consumer.testing.rig import settings as rig_settings
from tests.unit import factory
from tests.unit.formats.test_changelog import FORMAT_1, FORMAT_2

TP = (TOPIC, 0)


def settings(**sections: Any) -> Any:
    """The rig's settings, state saved with every batch (so commits follow every batch)."""
    return rig_settings(kafka={"state_save_seconds": 0}, **sections)


def beat(rig: Rig, up_to: float, source: str = "poller", interval: float = 1.0) -> None:
    """``source`` heartbeats vouching for ``T0 + up_to``, sent now to partition 0."""
    value = heartbeat.encode(source, T0 + up_to, interval)
    headers = ((heartbeat.HEADER, source.encode()),)
    rig.consumer.produce(value, key=source.encode(), headers=headers)


def alerts(rig: Rig) -> list[dict[str, Any]]:
    """Every acknowledged alert record, in order."""
    return [json.loads(v) for v in rig.producer.values(ALERTS) if v is not None]


def stalls(rig: Rig) -> list[tuple[str, str]]:
    """(interaction, status) of every stall alert, in order."""
    return [(a["interactionId"], a["status"]) for a in alerts(rig) if "interactionId" in a]


def silences(rig: Rig) -> list[tuple[str, str, str]]:
    """(source, status, alertId) of every source_silent alert, in order."""
    return [(a["sourceId"], a["status"], a["alertId"]) for a in alerts(rig) if "sourceId" in a]


async def read_all(rig: Rig) -> None:
    """Wait until everything produced to partition 0 is applied, delivered and committed."""
    await until(lambda: rig.consumer.committed.get(TP) == len(rig.consumer.logs[TP]))


async def live(rig: Rig, until_t: float, *, beating: bool, source: str = "poller") -> None:
    """Let time pass second by second to ``T0 + until_t``, the source beating or not."""
    while rig.clock.wall() < T0 + until_t:
        rig.clock.advance(1)
        if beating:
            beat(rig, rig.clock.wall() - T0, source)
        await asyncio.sleep(0.003)
    await read_all(rig)


async def stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    """Stop a daemon: it commits and saves what it has."""
    daemon.stop()
    await asyncio.wait_for(task, 5)


def test_a_stall_is_judged_only_as_far_as_the_poll_vouched() -> None:
    """Issue 34: moves published by the next poll never fire; a real stall fires within a poll."""
    rig = Rig(config=settings(stalls={"thresholds": {"previewing": 12}}))
    interval = 5
    pops = {f"placed-{n}": 2.0 * n for n in range(8)}  # each placed 10 s after its pop
    pops["never-placed"] = 16.0
    fired_at: dict[str, float] = {}

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        t = 0.0
        while t < 40:
            t += 0.5
            rig.clock.advance(0.5)
            if t % interval == 0:  # a poll round: what happened before it, then a heartbeat
                for iid, pop in pops.items():
                    placed = pop + 10 if iid != "never-placed" else t
                    if pop < t <= placed:
                        rig.send(preview(iid, previewing=pop), key=iid, at=t)
                    elif pop < t:
                        rig.send(preview(iid, previewing=pop, placed=placed), key=iid, at=t)
                beat(rig, t, interval=interval)
                await read_all(rig)
            await asyncio.sleep(0.003)
            for iid, _ in stalls(rig):
                fired_at.setdefault(iid, t)
        await stop(daemon, task)

    asyncio.run(scenario())
    assert list(fired_at) == ["never-placed"]
    due = pops["never-placed"] + 12
    assert due <= fired_at["never-placed"] <= due + interval


@pytest.mark.parametrize("handover", ["restart", "rebalance"])
def test_a_new_owner_during_a_silence_keeps_the_clock_stopped_and_the_alert(handover: str) -> None:
    """Issue 27 case 1: no stall, one source_silent alertId, resolved on return; stuck fires."""
    config = settings(
        runtime={"source_silent_seconds": 10, "source_grace_seconds": 4},
        stalls={"thresholds": {"previewing": 8}},
    )
    rig = Rig(config=config)
    in_flight = [f"p{n}" for n in range(5)]

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await live(rig, 10, beating=True)
        for n, iid in enumerate(in_flight):  # popped at 10-14, placed during the outage
            rig.send(preview(iid, previewing=10 + n), key=iid, at=10 + n)
        rig.send(preview("stuck", previewing=12), key="stuck", at=12)
        await live(rig, 15, beating=True)  # the producer dies at 15
        await live(rig, 30, beating=False)
        await until(lambda: len(silences(rig)) == 1)
        if handover == "restart":
            await stop(daemon, task)
            daemon = rig.daemon()
            task = asyncio.create_task(daemon.run())
        else:
            await rig.consumer.rebalance(revoke=[TP])
            await rig.consumer.rebalance(assign=[TP])
        await live(rig, 45, beating=False)
        assert stalls(rig) == []
        owned = [
            to_source_alert(e).alert_id
            for e in daemon.step.alerts_of(TP)
            if isinstance(e, SourceEvent)
        ]
        assert owned == [silences(rig)[0][2]]  # the new owner speaks for the same alert
        for n, iid in enumerate(in_flight):  # back: the placements it missed, a heartbeat
            rig.send(preview(iid, previewing=10 + n, placed=16 + n), key=iid, at=45)
        beat(rig, 45)
        await live(rig, 47, beating=True)
        await until(lambda: len(silences(rig)) == 2)
        await until(lambda: stalls(rig) == [("stuck", "firing")])
        await stop(daemon, task)

    asyncio.run(scenario())
    (fired, resolved) = silences(rig)
    assert (fired[:2], resolved[:2]) == (("poller", "firing"), ("poller", "resolved"))
    assert fired[2] == resolved[2]
    assert stalls(rig) == [("stuck", "firing")]


def send_from(rig: Rig, source: str, iid: str, at: float) -> None:
    """A preview of ``iid`` popped at ``T0 + at`` and published then by ``source``."""
    headers = (heartbeat.source_header(source),)
    value = preview(iid, previewing=at)
    rig.consumer.produce(value, key=iid.encode(), timestamp=T0 + at, headers=headers)


@pytest.mark.parametrize("handover", ["restart", "rebalance"])
def test_a_dead_source_stops_the_clock_of_its_own_interactions_only(handover: str) -> None:
    """Issue 27 case 2: one of two sources dies: its previews wait, the live one's stall fires."""
    config = settings(
        runtime={"source_silent_seconds": 10}, stalls={"thresholds": {"previewing": 8}}
    )
    rig = Rig(config=config)
    fired_at: dict[str, float] = {}

    async def second_by_second(daemon: Daemon, until_t: float) -> None:
        """To ``T0 + until_t``: only "alive" beats; when each stall fired, in seconds."""
        while rig.clock.wall() < T0 + until_t:
            rig.clock.advance(1)
            beat(rig, rig.clock.wall() - T0, "alive")
            await read_all(rig)
            for iid, _ in stalls(rig):
                fired_at.setdefault(iid, rig.clock.wall() - T0)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        for t in range(1, 6):
            rig.clock.advance(1)
            beat(rig, t, "alive")
            beat(rig, t, "dead")
        for n in range(3):  # the dead source's previews in flight: placed while it is dead
            send_from(rig, "dead", f"p{n}", 5)
        send_from(rig, "alive", "early", 6)  # really stuck: due at 14
        await second_by_second(daemon, 20)
        send_from(rig, "alive", "late", 20)  # really stuck: due at 28
        await second_by_second(daemon, 24)
        if handover == "restart":  # the state saved and restored: each in its source's lane
            await stop(daemon, task)
            daemon = rig.daemon()
            task = asyncio.create_task(daemon.run())
        else:
            await rig.consumer.rebalance(revoke=[TP])
            await rig.consumer.rebalance(assign=[TP])
        await until(lambda: TP in daemon.step.partitions)
        await until(lambda: not daemon.step.partitions[TP].restoring)
        lanes = daemon.step.partitions[TP].lanes
        assert set(lanes["dead"].tracker.states) == {"p0", "p1", "p2"}
        assert set(lanes["alive"].tracker.states) == {"early", "late"}
        await second_by_second(daemon, 40)
        await stop(daemon, task)

    asyncio.run(scenario())
    assert stalls(rig) == [("early", "firing"), ("late", "firing")]
    assert 14 <= fired_at["early"] <= 16
    assert 28 <= fired_at["late"] <= 30
    assert [s[:2] for s in silences(rig)] == [("dead", "firing")]


def test_records_without_a_source_are_judged_on_the_oldest_source() -> None:
    """A record naming no source on a heartbeat partition waits for the deadest source."""
    rig = Rig(config=settings(runtime={"source_silent_seconds": 10}))

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        for t in range(1, 6):
            rig.clock.advance(1)
            beat(rig, t, "alive")
            beat(rig, t, "dead")
        for n in range(3):
            rig.send(preview(f"p{n}", previewing=5), key=f"p{n}", at=5)
        await live(rig, 40, beating=True, source="alive")
        await until(lambda: len(silences(rig)) == 1)
        await stop(daemon, task)

    asyncio.run(scenario())
    assert stalls(rig) == []
    assert [s[:2] for s in silences(rig)] == [("dead", "firing")]


@pytest.mark.parametrize("interval", [86400.0, 1e300])
def test_a_heartbeat_promising_a_huge_interval_is_refused(interval: float) -> None:
    """Issue 27 case 2: intervalSeconds beyond an hour vouches for nothing, and is counted."""
    rig = Rig(config=settings(runtime={"source_silent_seconds": 10}))

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await live(rig, 5, beating=True)
        rig.send(preview("p", previewing=5), key="p", at=5)
        beat(rig, 5, interval=interval)  # a one-off `poll --interval 86400`, then nothing
        await live(rig, 40, beating=False)
        await until(lambda: len(silences(rig)) == 1)
        assert rig.sample("dialer_heartbeats_ignored_total", {"reason": "interval"}) == 1
        await stop(daemon, task)

    asyncio.run(scenario())
    assert stalls(rig) == []


def test_a_retired_source_is_dropped_its_alert_resolved_its_heartbeats_ignored() -> None:
    """runtime.retired_sources: saved state tombstoned, silence resolved as retired, counted."""
    rig = Rig(config=settings(runtime={"source_silent_seconds": 10}))

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await live(rig, 5, beating=True, source="old")
        await live(rig, 30, beating=False)  # silent past 10 s
        await until(lambda: len(silences(rig)) == 1)
        await stop(daemon, task)
        rig.config = settings(runtime={"source_silent_seconds": 10, "retired_sources": ["old"]})
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: len(silences(rig)) == 2)
        beat(rig, 31, "old")
        await live(rig, 32, beating=False)
        assert rig.sample("dialer_heartbeats_ignored_total", {"reason": "retired"}) == 1
        rig.send(preview("p", previewing=32), key="p", at=32)
        await live(rig, 43, beating=False)  # no source left: the wall clock judges again
        await until(lambda: stalls(rig) == [("p", "firing")])
        await stop(daemon, task)

    asyncio.run(scenario())
    fired, resolved = (a for a in alerts(rig) if "sourceId" in a)
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "retired")
    assert resolved["alertId"] == fired["alertId"]
    saved = [r for r in rig.producer.topics[STATE] if r.key == changelog.source_key("old")]
    assert saved[-1].value is None


def test_a_changelog_without_source_records_still_restores() -> None:
    """Upgrade: formats 1-3 written before source records restore; the wall clock judges."""
    rig = Rig(config=settings(), clock=FakeClock(factory.T0 + 640))
    records = [(f"v1-{i}".encode(), bytes.fromhex(v)) for i, v in FORMAT_1.items()]
    records += [(f"v2-{i}".encode(), bytes.fromhex(v)) for i, v in FORMAT_2.items()]
    t = factory.tracker()
    t.ingest(factory.snap("v3", previewing=630), factory.T0 + 630)
    records.append((b"v3", changelog.encode(t.states["v3"], None)))
    rig.producer.topics[STATE] = [
        FakeRecord(STATE, 0, n, 0, key, value) for n, (key, value) in enumerate(records)
    ]

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: TP in daemon.step.partitions)
        await until(lambda: not daemon.step.partitions[TP].restoring)
        assert len(daemon.step.partitions[TP].tracker) == 7  # no source: none named
        assert daemon.step.partitions[TP].lanes == {}
        assert daemon.step.partitions[TP].sources == {}
        rig.clock.advance(20)  # the pending ones and v3 come due on the wall clock
        await until(lambda: {i for i, s in stalls(rig)} == {"v1-i-pending", "v2-i-pending", "v3"})
        await stop(daemon, task)

    asyncio.run(scenario())


@pytest.mark.parametrize("handover", ["none", "restart"])
def test_an_expected_source_that_never_beats_is_silent_and_holds_the_clock(handover: str) -> None:
    """runtime.expected_sources: a source never heard is one silence; no stall judged till it is."""
    config = settings(
        runtime={"source_silent_seconds": 10, "expected_sources": ["poller"]},
        stalls={"thresholds": {"previewing": 8}},
    )
    rig = Rig(config=config)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        rig.send(preview("stuck", previewing=0), key="stuck", at=0)
        await live(rig, 30, beating=False)  # the poller never worked
        assert [(s, status) for s, status, _ in silences(rig)] == [("poller", "firing")]
        assert stalls(rig) == []  # nobody vouched for the time it would be due
        if handover == "restart":
            await stop(daemon, task)
            daemon = rig.daemon()
            task = asyncio.create_task(daemon.run())
            await live(rig, 40, beating=False)
            assert [(s, status) for s, status, _ in silences(rig)] == [("poller", "firing")]
        await live(rig, 50, beating=True)  # it works at last
        await until(lambda: ("poller", "resolved") in [(s, st) for s, st, _ in silences(rig)])
        await until(lambda: stalls(rig) == [("stuck", "firing")])
        await stop(daemon, task)

    asyncio.run(scenario())
    assert len({alert_id for _, _, alert_id in silences(rig)}) == 1


def test_expected_and_retired_sources_cannot_overlap() -> None:
    """A source both expected and retired is a configuration error naming the setting."""
    with pytest.raises(ConfigError, match=r"runtime\.expected_sources: poller"):
        settings(runtime={"expected_sources": ["poller"], "retired_sources": ["poller"]})


def test_expected_sources_are_refused_with_repartition() -> None:
    """Re-keyed partitions get no heartbeats: expecting a source there is refused at start."""
    with pytest.raises(ConfigError, match=r"runtime\.expected_sources: kafka\.repartition"):
        rig_settings(runtime={"expected_sources": ["poller"]}, kafka={"repartition": True})
