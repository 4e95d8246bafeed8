"""The pure batch step: records, facts and a wall clock in; alerts, letters, offsets out."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.daemon.outputs import Outputs
from consumer.daemon.step import Facts, Step
from consumer.daemon.step_settings import StepSettings
from consumer.engine.alerting import StallEvent
from consumer.engine.limits import Budget, Limits
from consumer.engine.observations import Observations
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.sources import MAX_SOURCES, SourceState, SourceWatch
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.formats import changelog, heartbeat
from consumer.testing.fakes import FakeRecord
from consumer.testing.rig import T0, TOPIC, beat, preview

TP = (TOPIC, 0)


class ExplodingTracker(Tracker):
    """A tracker with a bug that one interaction id sets off."""

    def ingest(self, item: Snapshot | Tombstone, now: float) -> list:  # type: ignore[type-arg]
        if item.interaction_id == "poison":
            raise ZeroDivisionError("a bug in the engine")
        return super().ingest(item, now)


def step_with(tracker: type[Tracker] = Tracker, **options: float) -> Step:
    """A step owning partition 0 of the input, caught up from the start."""
    policy = StallPolicy({"previewing": 10})
    step = Step(
        StepSettings(**options),  # type: ignore[arg-type]
        lambda: tracker(policy, Limits(), Observations()),
        lambda topic: SourceWatch(topic, 30.0),
    )
    step.assign(TP, forward=False, restoring=False, now=0.0)
    return step


def record(offset: int, value: bytes | None, *, key: str, at: float, **kw: object) -> FakeRecord:
    """An input record at ``T0 + at``."""
    headers = kw.get("headers", ())
    return FakeRecord(TOPIC, 0, offset, int((T0 + at) * 1000), key.encode(), value, headers)  # type: ignore[arg-type]


def facts(end: int, answered: float) -> Facts:
    """The source read partition 0 to ``end``; the broker answered at ``T0 + answered``."""
    return Facts(lambda tp: end, lambda tp: T0 + answered, True)


def test_an_engine_exception_is_a_dead_letter_and_the_partition_moves_on() -> None:
    """A record the engine raises on is dead-lettered as engine_error; the next one applies."""
    step = step_with(ExplodingTracker)
    batch = [
        record(0, preview("poison", previewing=0), key="poison", at=0),
        record(1, preview("fine", previewing=0), key="fine", at=1),
    ]
    out = step.step({TP: batch}, facts(2, 1), T0 + 1, 0.0)
    ((letter, invalid),) = out.dead_letters
    assert letter.offset == 0
    assert (invalid.reason, invalid.detail) == (
        "engine_error",
        "ZeroDivisionError: a bug in the engine",
    )
    assert "fine" in step.partitions[TP].tracker.states
    assert out.offsets == {TP: 2}


def test_a_record_failing_after_its_tick_loses_no_alert() -> None:
    """What fell due before a record the engine fails to apply still fires, in that batch."""

    def broken() -> list[Tracker]:
        raise RuntimeError("a bug in the budget")

    policy = StallPolicy({"previewing": 10})
    step = Step(
        StepSettings(),
        lambda: Tracker(policy, Limits(budget=Budget(1, broken)), Observations()),
        lambda topic: SourceWatch(topic, 30.0),
    )
    step.assign(TP, forward=False, restoring=False, now=0.0)
    step.step({TP: [record(0, preview("a", previewing=0), key="a", at=0)]}, facts(1, 0), T0, 0.0)
    # "b" comes 20 s later: its tick fires "a", then taking "b" over the budget raises
    out = step.step(
        {TP: [record(1, preview("b", created=20), key="b", at=20)]}, facts(2, 0), T0 + 20, 0.0
    )
    ((letter, invalid),) = out.dead_letters
    assert (letter.offset, invalid.reason) == (1, "engine_error")
    fired = [(e.interaction_id, e.status) for e in out.events if isinstance(e, StallEvent)]
    assert fired == [("a", "firing")]


def test_oversized_values_are_dead_letters_unread() -> None:
    """A value over the size limit is too_large, whatever it holds."""
    step = step_with(max_record_bytes=100)
    big = preview("big", previewing=0) + b" " * 200
    out = step.step({TP: [record(0, big, key="big", at=0)]}, facts(1, 0), T0, 0.0)
    assert [i.reason for _, i in out.dead_letters] == ["too_large"]


def test_misrouted_snapshots_are_counted_and_warned_once() -> None:
    """A snapshot keyed by something else is counted every time, warned about once."""
    step = step_with()
    batch = [record(n, preview("i-1", created=n), key="wrong", at=n) for n in range(3)]
    out = step.step({TP: batch}, facts(3, 2), T0 + 2, 0.0)
    assert out.misrouted == 3
    assert [n.event for n in out.notices if n.event == "misrouted_snapshot"] == [
        "misrouted_snapshot"
    ]


def test_a_snapshot_from_the_future_is_applied_counted_and_warned_once_a_minute() -> None:
    """Stage times beyond the clock plus the skew count as future; the warning is rate-limited."""
    step = step_with(max_clock_skew=60)
    ahead = [record(n, preview(f"i-{n}", created=86400), key=f"i-{n}", at=0) for n in range(3)]
    out = step.step({TP: ahead}, facts(3, 0), T0, 0.0)
    assert out.future == {TP: 3}
    assert len(step.partitions[TP].tracker.states) == 3  # applied all the same
    warnings = [n for n in out.notices if n.event == "timestamp_from_the_future"]
    assert len(warnings) == 1
    assert warnings[0].level == logging.WARNING


def test_heartbeats_are_counted_never_dead_lettered() -> None:
    """A heartbeat record is counted and vouches for time; an unreadable one is warned about."""
    step = step_with()
    value, headers = beat(0)
    out = step.step(
        {
            TP: [
                record(0, value, key="poller", at=0, headers=headers),
                record(1, b"garbage", key="poller", at=0, headers=headers),
            ]
        },
        facts(2, 0),
        T0,
        0.0,
    )
    assert out.heartbeats == 2
    assert out.dead_letters == []
    assert step.partitions[TP].clock.vouched == T0
    assert [n.event for n in out.notices] == ["heartbeat_unreadable", "caught_up"]


def test_a_partition_not_confirmed_by_the_broker_is_not_caught_up() -> None:
    """Without a fetch answer (broker away) the partition keeps its event time."""
    step = step_with()
    batch = [record(0, preview("a", previewing=0), key="a", at=0)]
    out = step.step({TP: batch}, Facts(lambda tp: 1, lambda tp: None, True), T0 + 100, 0.0)
    assert out.events == []
    assert not step.partitions[TP].clock.caught_up
    assert step.views[0].lag == 0
    assert not step.views[0].caught_up


def test_repartition_waits_for_what_it_forwarded_before_trusting_the_wall_clock() -> None:
    """A re-keyed partition is not caught up while its input lags or its forwards are unread."""
    step = step_with()
    tracked = ("group.repartition", 0)
    step.assign(TP, forward=True, restoring=False, now=0.0)  # the input, re-keyed
    step.assign(tracked, forward=False, restoring=False, now=0.0)
    ends = {TP: 2, tracked: 0}
    facts = Facts(ends.get, lambda tp: T0 + 100, True)
    out = step.step(
        {TP: [record(0, preview("a", previewing=0), key="x", at=0)]}, facts, T0 + 100, 0.0
    )
    assert len(out.forwards) == 1
    assert not step.partitions[tracked].clock.caught_up  # the input still lags
    step.step({TP: [record(1, preview("b", previewing=0), key="y", at=0)]}, facts, T0 + 100, 0.0)
    step.forwarded({tracked: 2})  # both landed on the tracked partition, not yet read
    step.step({}, facts, T0 + 100, 0.0)
    assert not step.partitions[tracked].clock.caught_up
    ends[tracked] = 2
    step.position(tracked, 0)
    rekeyed = [
        record(0, preview("a", previewing=0), key="a", at=0),
        record(1, preview("b", previewing=0), key="b", at=0),
    ]
    out = step.step({tracked: rekeyed}, facts, T0 + 100, 0.0)
    assert step.partitions[tracked].clock.caught_up
    fired = {e.interaction_id for e in out.events if isinstance(e, StallEvent)}
    assert fired == {"a", "b"}


def test_a_flood_of_bad_records_is_counted_and_warned_once_a_minute() -> None:
    """Unreadable heartbeats: each counted, one warning per partition per minute."""
    step = step_with()
    _, headers = beat(0)
    garbage = [record(n, b"garbage", key="x", at=0, headers=headers) for n in range(50)]
    out = step.step({TP: garbage}, facts(50, 0), T0, 0.0)
    assert out.heartbeats == 50
    assert [n.event for n in out.notices].count("heartbeat_unreadable") == 1
    later = [record(50, b"garbage", key="x", at=61, headers=headers)]
    out = step.step({TP: later}, facts(51, 61), T0 + 61, 0.0)
    assert [n.event for n in out.notices].count("heartbeat_unreadable") == 1


def saved(out: Outputs) -> list[bytes]:
    """The keys of the state records in ``out``, in order."""
    return [key for records in out.states.values() for key, _ in records]


def test_changes_within_the_save_interval_are_saved_once_and_hold_the_offset_back() -> None:
    """An interaction changed thrice inside the save interval is saved once; its offset waits."""
    step = step_with(save_every=5.0)
    first = step.step(
        {TP: [record(0, preview("a", created=0), key="a", at=0)]}, facts(1, 0), T0, 10.0
    )
    assert (saved(first), first.offsets) == ([b"a"], {TP: 1})  # nothing saved for a while
    for n in (1, 2):
        moved = preview("a", created=0, previewing=n)
        out = step.step({TP: [record(n, moved, key="a", at=n)]}, facts(n + 1, n), T0 + n, 10.0 + n)
        assert (saved(out), out.offsets) == ([], {TP: 1})
    quiet = step.step({}, facts(3, 5), T0 + 5, 15.0)  # the interval is over
    assert (saved(quiet), quiet.offsets) == ([b"a"], {TP: 3})
    ((_, value),) = quiet.states[0]
    restored = changelog.decode(value or b"")
    assert restored is not None
    assert restored[0].previewing == T0 + 2


def test_a_flush_saves_what_waits_and_releases_the_offset() -> None:
    """Before a revocation commits, flush hands over the unsaved state and its end offset."""
    step = step_with(save_every=60.0)
    step.step({TP: [record(0, preview("a", created=0), key="a", at=0)]}, facts(1, 0), T0, 10.0)
    later = [record(1, preview("b", created=1), key="b", at=1)]
    out = step.step({TP: later}, facts(2, 1), T0 + 1, 11.0)
    assert (saved(out), out.offsets) == ([], {TP: 1})
    flushed = step.flush(12.0, [TP])
    assert (saved(flushed), flushed.offsets) == ([b"b"], {TP: 2})
    assert (saved(step.flush(13.0)), step.flush(13.0).offsets) == ([], {TP: 2})


def test_partitions_save_at_times_of_their_own() -> None:
    """Four busy partitions save every interval each, never two in one batch after the first."""
    step = step_with(save_every=5.0)
    tps = [(TOPIC, p) for p in range(4)]
    for tp in tps[1:]:
        step.assign(tp, forward=False, restoring=False, now=0.0)
    saves: dict[int, list[int]] = {p: [] for p in range(4)}
    together = []
    for n in range(40):  # a record for each partition every half second, for 20 s
        batch = {
            tp: [
                FakeRecord(TOPIC, tp[1], n, int((T0 + n / 2) * 1000), b"a", preview("a", created=n))
            ]
            for tp in tps
        }
        out = step.step(batch, facts(n + 1, n / 2), T0 + n / 2, n / 2)
        for p in out.states:
            saves[p].append(n)
        together.append(len(out.states))
    assert together[0] == 4
    assert max(together[1:]) == 1
    assert all(len(batches) in (4, 5) for batches in saves.values())  # the first, then every 5 s


def test_the_smallest_save_interval_still_saves_and_releases_offsets() -> None:
    """A save interval of the smallest positive float saves each batch; offsets keep moving."""
    step = step_with(save_every=5e-324)
    for n in range(3):
        batch = [record(n, preview(f"i-{n}", created=n), key=f"i-{n}", at=n)]
        out = step.step({TP: batch}, facts(n + 1, n), T0 + n, 100.0 + n)
        assert (saved(out), out.offsets) == ([f"i-{n}".encode()], {TP: n + 1})


def test_without_a_changelog_nothing_changed_is_remembered() -> None:
    """With state not persisted, the tracker's changed ids are let go each batch (no leak)."""
    step = step_with(persist_state=False)
    batch = [record(n, preview(f"i-{n}", created=n), key=f"i-{n}", at=n) for n in range(3)]
    out = step.step({TP: batch}, facts(3, 3), T0 + 3, 0.0)
    assert (out.states, out.offsets) == ({}, {TP: 3})
    assert not step.partitions[TP].tracker.dirty


STAGES_IN_ORDER = ("created", "previewing", "placed", "routed", "connected")


def scripted(moves: list[tuple[int, int]]) -> list[FakeRecord]:
    """A record a second per move (interaction, stage reached; 5: tombstone), none after one."""
    records: list[FakeRecord] = []
    ended: set[int] = set()
    for n, reached in moves:
        if n in ended:
            continue
        at = len(records)
        if reached == len(STAGES_IN_ORDER):
            ended.add(n)
            value = None
        else:
            times = {stage: float(at) for stage in STAGES_IN_ORDER[: reached + 1]}
            value = preview(f"i-{n}", **times)  # type: ignore[arg-type]
        records.append(record(at, value, key=f"i-{n}", at=at))
    return records


def view(step: Step) -> dict[str, tuple[object, ...]]:
    """What is tracked of each interaction: stage and stage times."""
    return {iid: (s.stage, tuple(s.times)) for iid, s in step.partitions[TP].tracker.states.items()}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=40),
    st.lists(st.floats(0, 3), min_size=40, max_size=40),
    st.sampled_from([0.0, 1.0, 5.0]),
    st.integers(0, 40),
)
def test_a_new_owner_rebuilds_every_interaction_from_saved_state_and_uncommitted_records(
    moves: list[tuple[int, int]], pauses: list[float], save_every: float, dies_after: int
) -> None:
    """Wherever an owner dies, its saved state and the records past its commit rebuild all."""
    records = scripted(moves)
    dies_after = min(dies_after, len(records))
    old = step_with(save_every=save_every)
    changelog_topic: dict[bytes, bytes | None] = {}
    committed, monotonic = 0, 0.0
    for n, item in enumerate(records[:dies_after]):
        monotonic += pauses[n]
        out = old.step({TP: [item]}, facts(n + 1, n), T0 + n, monotonic)
        for key, value in (r for rs in out.states.values() for r in rs):
            changelog_topic[key] = value
        committed = out.offsets.get(TP, committed)  # every output acknowledged
    new = step_with(save_every=save_every)
    saved = {k.decode(): changelog.decode(v) for k, v in changelog_topic.items() if v is not None}
    new.partitions[TP].tracker.restore({k: s for k, s in saved.items() if s is not None})
    for n in range(committed, dies_after):
        new.step({TP: [records[n]]}, facts(n + 1, n), T0 + n, monotonic)
    assert view(new) == view(old)


def test_heartbeats_with_an_insane_interval_are_refused_counted_and_warned_once_a_minute() -> None:
    """A heartbeat promising an interval outside 0.1 s - 1 h vouches for nothing; warned."""
    step = step_with()
    marked = ((heartbeat.HEADER, b"poller"),)
    values = [heartbeat.encode("poller", T0, i) for i in (86400.0, 1e300, 0.01, 3601.0)]
    batch = [record(n, v, key="poller", at=0, headers=marked) for n, v in enumerate(values)]
    out = step.step({TP: batch}, facts(4, 0), T0, 0.0)
    assert out.heartbeats_ignored == {"interval": 4}
    assert [n.event for n in out.notices].count("heartbeat_interval_refused") == 1
    assert step.partitions[TP].sources == {}
    assert step.partitions[TP].clock.vouched is None


def test_a_heartbeat_source_is_saved_beside_the_interactions_and_holds_the_offset() -> None:
    """The source's state is a changelog record of its own kind; its offset waits for it."""
    step = step_with(save_every=60.0)
    value, headers = beat(0)
    first = step.step(
        {TP: [record(0, value, key="poller", at=0, headers=headers)]}, facts(1, 0), T0, 0.0
    )
    ((key, saved_value),) = first.states[0]
    assert changelog.source_of(key) == "poller"
    assert saved_value is not None
    assert changelog.read_source(saved_value) == SourceState(T0, 1.0)
    value, headers = beat(1)
    later = [record(1, value, key="poller", at=1, headers=headers)]
    out = step.step({TP: later}, facts(2, 1), T0 + 1, 1.0)
    assert out.states == {}  # not due yet: the offset stays where the saved state ends
    assert out.offsets[TP] == 1
    out = step.flush(2.0)
    assert out.offsets[TP] == 2


def test_interactions_are_tracked_and_saved_per_source() -> None:
    """An id is tracked under the source its records name (under each, if two); saved with it."""
    step = step_with()
    a, b = (heartbeat.source_header(name) for name in ("a", "b"))
    batch = [
        record(0, preview("x", previewing=0), key="x", at=0, headers=(a,)),
        record(1, preview("x", previewing=0), key="x", at=0, headers=(b,)),
        record(2, preview("plain", previewing=0), key="plain", at=0),
    ]
    out = step.step({TP: batch}, facts(3, 0), T0, 0.0)
    state = step.partitions[TP]
    assert set(state.tracker.states) == {"plain"}
    assert {name: set(lane.tracker.states) for name, lane in state.lanes.items()} == {
        "a": {"x"},
        "b": {"x"},
    }
    saved = [changelog.read_sourced(value or b"") for _, value in out.states[0]]
    assert sorted(s[2] or "" for s in saved if not isinstance(s, str)) == ["", "a", "b"]


def test_an_interaction_tracked_before_its_source_was_named_stays_where_it_is() -> None:
    """A producer upgraded mid-call: the call's later records update the copy already tracked."""
    step = step_with()
    step.step({TP: [record(0, preview("x", previewing=0), key="x", at=0)]}, facts(1, 0), T0, 0.0)
    named = (heartbeat.source_header("poller"),)
    placed = preview("x", previewing=0, placed=2)
    step.step({TP: [record(1, placed, key="x", at=2, headers=named)]}, facts(2, 2), T0 + 2, 0.0)
    state = step.partitions[TP]
    assert state.tracker.states["x"].placed == T0 + 2
    assert "poller" not in state.lanes or "x" not in state.lanes["poller"].tracker.states


def test_a_flood_of_source_names_makes_at_most_max_sources_trackers() -> None:
    """Records naming a new source each: 32 lanes at most, the rest tracked without one."""
    step = step_with()
    batch = [
        record(
            n,
            preview(f"i-{n}", previewing=0),
            key=f"i-{n}",
            at=0,
            headers=(heartbeat.source_header(f"bogus-{n}"),),
        )
        for n in range(MAX_SOURCES + 10)
    ]
    step.step({TP: batch}, facts(len(batch), 0), T0, 0.0)
    state = step.partitions[TP]
    assert len(state.lanes) == MAX_SOURCES
    assert sum(len(t) for t in state.trackers()) == MAX_SOURCES + 10  # none lost
    assert len(state.tracker) == 10


def test_heartbeats_of_more_than_max_sources_are_ignored_counted_and_warned() -> None:
    """A partition keeps 32 heartbeat sources; a 33rd is ignored, counted and warned once."""
    step = step_with()
    beats = [beat(0, f"source-{n}") for n in range(MAX_SOURCES + 3)]
    batch = [record(n, v, key="s", at=0, headers=h) for n, (v, h) in enumerate(beats)]
    out = step.step({TP: batch}, facts(len(batch), 0), T0, 0.0)
    assert len(step.partitions[TP].sources) == MAX_SOURCES
    assert out.heartbeats_ignored == {"too_many_sources": 3}
    assert [n.event for n in out.notices].count("heartbeat_sources_exceeded") == 1


def test_a_restore_naming_more_than_max_sources_gives_the_rest_the_unsourced_tracker() -> None:
    """Saved interactions of a 33rd source restore without a lane, not into one of their own."""
    step = step_with()
    state = step.partitions[TP]
    owners = [state.tracker_of(f"source-{n}") for n in range(MAX_SOURCES + 2)]
    assert len(state.lanes) == MAX_SOURCES
    assert owners[-1] is owners[-2] is state.tracker
