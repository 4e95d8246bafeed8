"""The API's five lists in the engine: the genesys.bucket header, how it merges, which rules run."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from consumer.daemon.engine_metrics import EngineMetrics
from consumer.engine.lifecycle import merge, new_interaction
from consumer.engine.lists import LISTS, NO_LIST, PENDING, SCHEDULED, list_number
from consumer.engine.model import BUCKET_HEADER, bucket_of, decode_record
from consumer.engine.snapshot import Snapshot
from consumer.engine.stalls import StallPolicy
from consumer.formats import changelog
from consumer.formats.campaigns import BUCKETS
from consumer.testing.rig import T0 as RIG_T0
from consumer.testing.rig import TOPIC, Rig, drain, preview, until
from tests.unit.factory import T0, snap, statuses, tracker

HOUR = 3600.0


def test_the_lists_are_the_pollers_buckets() -> None:
    """The engine knows by number exactly the list names the poller writes in the header."""
    assert sorted(LISTS) == sorted(BUCKETS)
    assert [list_number(name) for name in LISTS] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(BUCKET_HEADER, b"scheduled")], SCHEDULED),
        (
            [("genesys.polled.at", b"2026-11-25T09:46:40.000Z"), (BUCKET_HEADER, b"pending")],
            PENDING,
        ),
        ([("genesys.polled.at", b"2026-11-25T09:46:40.000Z")], NO_LIST),
        ([(BUCKET_HEADER, b"queued")], NO_LIST),  # a list a later poller may name
        ([(BUCKET_HEADER, b"\xff")], NO_LIST),
    ],
)
def test_the_bucket_header_reaches_the_snapshot(
    headers: list[tuple[str, bytes]], expected: int
) -> None:
    """The header's list is the snapshot's; none, or a name not known, is no list, never invalid."""
    value = json.dumps({"id": "i-1", "creationTime": "2026-11-25T09:46:40Z"}).encode()
    item = decode_record(b"i-1", value, bucket_of(headers))
    bare = decode_record(b"i-1", value)
    assert isinstance(item, Snapshot)
    assert isinstance(bare, Snapshot)
    assert (item.bucket, bare.bucket) == (expected, NO_LIST)


def test_a_record_without_a_list_keeps_the_list_known() -> None:
    """A snapshot with no header, even a newer one, leaves the list as it was."""
    state = new_interaction()
    merge(state, snap(created=0, bucket="scheduled"))
    merge(state, snap(created=0, active=False))
    merge(state, snap(created=5, active=False))
    assert (state.bucket, state.bucket_version) == (SCHEDULED, T0)


def test_on_a_version_tie_the_list_further_along_wins_in_any_order() -> None:
    """Scheduled then pending with the same times is pending, in either order (a join)."""
    states = []
    for order in (("scheduled", "pending"), ("pending", "scheduled")):
        state = new_interaction()
        for name in order:
            merge(state, snap(created=0, bucket=name))
        states.append(state)
    assert states[0] == states[1]
    assert states[0].bucket == PENDING


def test_a_move_of_list_alone_is_news_and_an_older_snapshot_moves_nothing() -> None:
    """Leaving scheduled with no newer time is learned; a late, older list is ignored."""
    state = new_interaction()
    merge(state, snap(created=0, bucket="scheduled"))
    assert merge(state, snap(created=0, bucket="scheduled")) is None  # a duplicate
    assert merge(state, snap(created=0, bucket="pending")) == []  # news, no stage reached
    merge(state, snap(created=0, previewing=7, bucket="previewing"))
    assert merge(state, snap(created=0, bucket="scheduled")) is None
    assert state.bucket == list_number("previewing")


def test_a_scheduled_callback_never_fires_created() -> None:
    """A callback held in scheduled for hours raises nothing, however long it waits."""
    t = tracker()
    assert t.ingest(snap(created=0, active=False, bucket="scheduled"), T0) == []
    assert t.tick(T0 + 10 * HOUR) == []
    assert t.running("i-1") is None


def test_a_callback_popped_from_scheduled_fires_previewing_on_time() -> None:
    """Once popped, the previewing rule runs from the pop's own time, not from creation."""
    t = tracker()
    t.ingest(snap(created=0, active=False, bucket="scheduled"), T0)
    popped = 2 * HOUR
    assert t.ingest(snap(created=0, previewing=popped, bucket="previewing"), T0 + popped) == []
    assert t.tick(T0 + popped + 299) == []
    (event,) = t.tick(T0 + popped + 300)
    assert (event.status, event.stall.rule, event.stall.since) == (
        "firing",
        "previewing",
        T0 + popped,
    )


def test_pending_raises_nothing_and_its_interactions_leave_it_when_popped() -> None:
    """A long pending wait pages nobody; the pop starts the previewing rule as usual."""
    t = tracker()
    t.ingest(snap(created=0, active=False, bucket="pending"), T0)
    assert t.tick(T0 + HOUR) == []
    t.ingest(snap(created=0, previewing=HOUR, bucket="previewing"), T0 + HOUR)
    assert statuses(t.tick(T0 + HOUR + 300)) == [("firing", "i-1", "previewing")]


def test_without_a_list_created_fires_as_before_unless_switched_off() -> None:
    """Records with no header keep the created rule; the setting switches it off for them alone."""
    before = tracker()
    before.ingest(snap(created=0, active=False), T0)
    assert statuses(before.tick(T0 + 120)) == [("firing", "i-1", "created")]

    off = tracker(StallPolicy(created_without_bucket=False))
    off.ingest(snap(created=0, active=False), T0)
    off.ingest(snap("popped", created=0, previewing=1), T0 + 1)
    assert statuses(off.tick(T0 + HOUR)) == [("firing", "popped", "previewing")]


def test_the_list_survives_a_restart_and_the_rules_follow_it() -> None:
    """Saved and restored, a scheduled callback stays quiet; popped, it fires on time."""
    t = tracker()
    t.ingest(snap(created=0, active=False, bucket="scheduled"), T0)
    value = changelog.encode(t.states["i-1"], None)
    restored = changelog.decode(value)
    assert restored is not None
    assert restored[0] == t.states["i-1"]
    assert (restored[0].bucket, restored[0].bucket_version) == (SCHEDULED, T0)

    after = tracker()
    after.restore({"i-1": restored})
    assert after.tick(T0 + 5 * HOUR) == []
    after.ingest(snap(created=0, previewing=5 * HOUR, bucket="previewing"), T0 + 5 * HOUR)
    assert statuses(after.tick(T0 + 5 * HOUR + 300)) == [("firing", "i-1", "previewing")]


def test_a_saved_list_this_release_does_not_know_restores_as_none() -> None:
    """A format 4 value naming a list from a later release restores, with no list."""
    t = tracker()
    t.ingest(snap(created=0, bucket="scheduled"), T0)
    saved = msgspec.msgpack.decode(changelog.encode(t.states["i-1"], None))
    saved[-1] = ["queued", T0]
    restored = changelog.decode(msgspec.msgpack.encode(saved))
    assert restored is not None
    assert (restored[0].bucket, restored[0].created) == (NO_LIST, T0)


def test_pending_interactions_are_a_gauge_per_campaign_within_the_label_cap() -> None:
    """dialer_pending_interactions counts pending ones per campaign; past the cap, other."""
    t = tracker()
    t.ingest(snap("a", created=0, bucket="pending"), T0)
    t.ingest(snap("b", created=0, bucket="pending"), T0)
    t.ingest(snap("c", created=0, bucket="scheduled"), T0)
    t.ingest(snap("d", created=0, campaign="c-2", bucket="pending"), T0)
    t.ingest(snap("e", created=0, campaign="c-3", bucket="pending"), T0)
    registry = CollectorRegistry()
    EngineMetrics(registry, lambda: [t], max_campaign_labels=2)

    def pending(campaign: str) -> float | None:
        return registry.get_sample_value("dialer_pending_interactions", {"campaign": campaign})

    assert (pending("c-1"), pending("c-2"), pending("other")) == (2, 1, 1)
    t.ingest(snap("a", created=0, previewing=1, bucket="previewing"), T0 + 1)
    t.ingest(snap("d", created=0, previewing=1, bucket="previewing"), T0 + 1)
    assert (pending("c-1"), pending("c-2")) == (1, 0)  # a series seen once stays, at zero


def test_the_daemon_reads_the_header_and_keeps_the_list_across_a_restart() -> None:
    """Daemon: a scheduled callback is quiet before and after a restart; popped, it fires."""
    rig = Rig()  # thresholds of 10 s
    headers = ((BUCKET_HEADER, b"scheduled"),)
    rig.consumer.produce(
        preview("cb", active=False, created=0),
        key=b"cb",
        timestamp=RIG_T0,
        headers=headers,
    )
    asyncio.run(drain(rig.daemon()))  # saves the state, commits the record

    async def scenario() -> None:
        daemon = rig.daemon()  # restores the list from the changelog, reads nothing again
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get((TOPIC, 0)) == 1)
        rig.clock.advance(HOUR)
        await asyncio.sleep(0.05)
        assert rig.alerts() == []
        rig.consumer.produce(
            preview("cb", created=0, previewing=HOUR),
            key=b"cb",
            timestamp=RIG_T0 + HOUR,
            headers=((BUCKET_HEADER, b"previewing"),),
        )
        await until(lambda: rig.consumer.committed.get((TOPIC, 0)) == 2)
        assert rig.alerts() == []
        rig.clock.advance(10.5)
        await until(lambda: rig.alerts() == [("cb", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
