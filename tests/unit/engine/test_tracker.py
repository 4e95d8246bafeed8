"""The tracker: stalls firing and resolving on a fake clock, endings, TTL and cap."""

from __future__ import annotations

import pytest

from consumer.engine.limits import Budget, Limits
from consumer.engine.observations import Observations
from consumer.engine.snapshot import Tombstone
from consumer.engine.stages import Stage
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.formats.alerts import to_alert
from tests.unit.factory import T0, snap, stage_of, statuses, tracker


def test_previewing_stall_fires_once_at_threshold() -> None:
    """A popped preview nobody places fires at pop + threshold, and only once."""
    t = tracker()
    assert t.ingest(snap(created=0, previewing=1), T0 + 1) == []
    assert t.tick(T0 + 300.9) == []
    fired = t.tick(T0 + 301)
    assert statuses(fired) == [("firing", "i-1", "previewing")]
    assert fired[0].stalled_for == 300
    assert t.tick(T0 + 1000) == []
    assert t.obs.firings == {"previewing": 1}


def test_moving_on_resolves_with_the_same_alert_id() -> None:
    """A stalled interaction that moves on yields one resolved alert with the firing's id."""
    t = tracker()
    t.ingest(snap(created=0, previewing=1), T0 + 1)
    (fired,) = t.tick(T0 + 400)
    (resolved,) = t.ingest(snap(created=0, previewing=1, placed=410), T0 + 410)
    assert (resolved.status, resolved.resolution) == ("resolved", "moved_on")
    assert to_alert(resolved).alert_id == to_alert(fired).alert_id
    assert resolved.stalled_for == 409
    assert t.stalled == {}


def test_duplicates_after_firing_do_not_fire_again() -> None:
    """Re-delivered snapshots of a stalled interaction never raise a second firing."""
    t = tracker()
    s = snap(created=0, previewing=1)
    t.ingest(s, T0 + 1)
    assert len(t.tick(T0 + 400)) == 1
    for moment in (401, 500, 900):
        assert t.ingest(s, T0 + moment) == []
        assert t.tick(T0 + moment) == []


def test_attribute_change_keeps_the_same_stall() -> None:
    """A new agent on a stalled preview neither resolves nor refires it."""
    t = tracker()
    t.ingest(snap(created=0, previewing=1), T0 + 1)
    t.tick(T0 + 400)
    assert t.ingest(snap(agent="a-2", created=0, previewing=1, queue="q-2"), T0 + 410) == []
    assert t.tick(T0 + 900) == []
    assert len(t.stalled) == 1


def test_each_stage_has_its_own_threshold() -> None:
    """Placed, routed and wrapped-up-but-active each stall after their own threshold."""
    policy = StallPolicy({"placed": 10, "routed": 20, "wrapped_up": 30})
    t = tracker(policy)
    t.ingest(snap("p", placed=0), T0)
    t.ingest(snap("r", placed=0, routed=1), T0 + 1)
    t.ingest(snap("w", placed=0, connected=2, wrapped_up=3), T0 + 3)
    assert statuses(t.tick(T0 + 10)) == [("firing", "p", "placed")]
    assert statuses(t.tick(T0 + 21)) == [("firing", "r", "routed")]
    assert statuses(t.tick(T0 + 33)) == [("firing", "w", "wrapped_up")]


def test_created_stall_needs_a_creation_time() -> None:
    """An interaction never previewed stalls from its creation time, not from arrival."""
    t = tracker(StallPolicy({"created": 60}))
    t.ingest(snap(created=0), T0 + 50)
    assert statuses(t.tick(T0 + 60)) == [("firing", "i-1", "created")]
    t.ingest(snap("no-time"), T0 + 60)
    t.tick(T0 + 1000)
    assert "no-time" in t.states
    assert "no-time" not in t.stalled


def test_conversation_over_but_preview_active_stalls() -> None:
    """A live preview whose conversation ended stalls from the conversation's end."""
    t = tracker(StallPolicy({"conversation_ended": 30, "connected": 0}))
    t.ingest(snap(placed=0, connected=5, conversation_ended=100), T0 + 100)
    assert t.tick(T0 + 129) == []
    (alert,) = t.tick(T0 + 130)
    assert (alert.stall.rule, alert.stall.stage.label) == ("conversation_ended", "connected")


def test_campaign_override_beats_default() -> None:
    """A per-campaign threshold applies to that campaign only."""
    policy = StallPolicy({"previewing": 100}, {"slow": {"previewing": 1000}})
    t = tracker(policy)
    t.ingest(snap("fast", campaign="c-1", previewing=0), T0)
    t.ingest(snap("slow-1", campaign="slow", previewing=0), T0)
    assert statuses(t.tick(T0 + 100)) == [("firing", "fast", "previewing")]
    assert statuses(t.tick(T0 + 1000)) == [("firing", "slow-1", "previewing")]


def test_zero_threshold_switches_a_rule_off() -> None:
    """A threshold of 0 means that stage never stalls."""
    t = tracker(StallPolicy({"previewing": 0}))
    t.ingest(snap(previewing=0), T0)
    assert t.tick(T0 + 1e6) == []


def test_non_preview_modes_are_not_watched_unless_asked() -> None:
    """Power-mode interactions without an active preview stall only with watch_all_modes."""
    s = snap(mode="power", active=False, placed=0)
    quiet = tracker()
    quiet.ingest(s, T0)
    assert quiet.tick(T0 + 1000) == []
    loud = tracker(StallPolicy(watch_all_modes=True))
    loud.ingest(s, T0)
    assert statuses(loud.tick(T0 + 1000)) == [("firing", "i-1", "placed")]


def test_active_preview_flag_makes_any_mode_watched() -> None:
    """An active preview is watched whatever the dialing mode says, or with none."""
    t = tracker()
    t.ingest(snap(mode=None, active=True, placed=0), T0)
    assert statuses(t.tick(T0 + 60)) == [("firing", "i-1", "placed")]


def test_wrap_up_with_inactive_preview_ends_and_resolves() -> None:
    """Wrapping up with the preview closed removes the interaction and resolves its stall."""
    t = tracker(StallPolicy({"connected": 10}))
    t.ingest(snap(placed=0, connected=1), T0 + 1)
    t.tick(T0 + 20)
    (resolved,) = t.ingest(snap(active=False, placed=0, connected=1, wrapped_up=30), T0 + 30)
    assert (resolved.status, resolved.resolution) == ("resolved", "wrapped_up")
    assert stage_of(t) is None
    assert t.obs.removals == {"wrapped_up": 1}


def test_conversation_end_with_inactive_preview_ends() -> None:
    """A finished conversation with no live preview ends the interaction."""
    t = tracker()
    t.ingest(snap(mode="power", active=False, placed=0, connected=2), T0 + 2)
    t.ingest(snap(mode="power", active=False, placed=0, conversation_ended=50), T0 + 50)
    assert stage_of(t) is None
    assert t.obs.removals == {"conversation_ended": 1}


def test_tombstone_ends_and_resolves() -> None:
    """A tombstone removes the interaction and resolves its stall with reason tombstone."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    t.tick(T0 + 301)
    (resolved,) = t.ingest(Tombstone("i-1"), T0 + 302)
    assert resolved.resolution == "tombstone"
    assert t.obs.removals == {"tombstone": 1}
    assert t.obs.events["tombstone"] == 1


def test_late_echo_of_ended_interaction_is_ignored() -> None:
    """A snapshot older than an interaction's end does not resurrect it."""
    t = tracker()
    t.ingest(snap(active=False, placed=0, connected=1, wrapped_up=30), T0 + 30)
    assert t.ingest(snap(placed=0, connected=1), T0 + 31) == []
    assert stage_of(t) is None
    assert t.obs.events["ended"] == 1
    assert t.tick(T0 + 10_000) == []


def test_snapshot_republished_after_a_tombstone_fires_the_stall_again_once() -> None:
    """Tombstone, then the same snapshot: the interaction is live again and stalls, once."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    fired = t.tick(T0 + 301)
    resolved = t.ingest(Tombstone("i-1"), T0 + 302)
    again = t.ingest(snap(previewing=0), T0 + 303) + t.tick(T0 + 3000)
    assert statuses(fired + resolved + again) == [
        ("firing", "i-1", "previewing"),
        ("resolved", "i-1", "previewing"),
        ("firing", "i-1", "previewing"),
    ]
    assert stage_of(t) is Stage.PREVIEWING


def test_snapshot_older_than_the_tombstoned_state_is_an_echo() -> None:
    """After a tombstone, a snapshot older than what was tracked does not reopen it."""
    t = tracker()
    t.ingest(snap(previewing=0, placed=10), T0 + 10)
    t.ingest(Tombstone("i-1"), T0 + 11)
    assert t.ingest(snap(previewing=0), T0 + 12) == []
    assert stage_of(t) is None
    assert t.obs.events["ended"] == 1


def test_tombstone_after_a_lifecycle_end_keeps_the_echo_protection() -> None:
    """Wrapped up and inactive, then tombstoned: a re-sent earlier snapshot stays ignored."""
    t = tracker()
    t.ingest(snap(active=False, placed=0, connected=1, wrapped_up=30), T0 + 30)
    t.ingest(Tombstone("i-1"), T0 + 31)
    assert t.ingest(snap(placed=0, connected=1, wrapped_up=30), T0 + 32) == []
    assert stage_of(t) is None


def test_new_call_after_end_is_tracked_again() -> None:
    """A placement newer than the ending wrap-up starts tracking a new call."""
    t = tracker()
    t.ingest(snap(active=False, placed=0, wrapped_up=30), T0 + 30)
    t.ingest(snap(placed=100, wrapped_up=30), T0 + 100)
    assert stage_of(t) is Stage.PLACED


def test_outcomes_are_counted() -> None:
    """Applied, duplicate and late snapshots are told apart in the event counts."""
    t = tracker()
    t.ingest(snap(created=0, previewing=5), T0 + 5)
    t.ingest(snap(created=0, previewing=5), T0 + 6)
    t.ingest(snap(created=0), T0 + 7)
    assert t.obs.events == {"applied": 1, "duplicate": 1, "late": 1}


def test_transitions_are_counted_per_stage_and_mode() -> None:
    """Every stage reached counts once, labelled with the dialing mode."""
    t = tracker()
    t.ingest(snap(created=0, previewing=1), T0 + 1)
    t.ingest(snap(created=0, previewing=1, placed=3), T0 + 3)
    t.ingest(snap(created=0, previewing=1, placed=3), T0 + 4)
    assert t.obs.transitions == {
        ("created", "preview"): 1,
        ("previewing", "preview"): 1,
        ("placed", "preview"): 1,
    }


def test_idle_interactions_expire_after_ttl() -> None:
    """An interaction with no snapshot for the TTL is removed, resolving its stall."""
    t = tracker(ttl=1000)
    t.ingest(snap("old", previewing=0), T0)
    t.ingest(snap("fresh", previewing=0), T0 + 900)
    t.tick(T0 + 950)  # both stalled by now
    alerts = t.tick(T0 + 1001)
    assert [(a.interaction_id, a.resolution) for a in alerts] == [("old", "expired")]
    assert set(t.states) == {"fresh"}
    assert t.obs.removals == {"expired": 1}


def test_cap_evicts_least_recently_updated() -> None:
    """At the cap, a new interaction evicts the one updated longest ago, and it is counted."""
    t = tracker(cap=2)
    t.ingest(snap("a", created=0), T0)
    t.ingest(snap("b", created=1), T0 + 1)
    t.ingest(snap("a", created=0, previewing=2), T0 + 2)  # a is now the fresher
    t.ingest(snap("c", created=3), T0 + 3)
    assert set(t.states) == {"a", "c"}
    assert t.obs.removals == {"evicted": 1}
    assert sum(t.stage_counts) == 2


def test_stage_counts_follow_the_states() -> None:
    """stage_counts always equals the stages of the tracked interactions."""
    t = tracker()
    t.ingest(snap("a", created=0), T0)
    t.ingest(snap("b", placed=0), T0)
    t.ingest(snap("a", created=0, previewing=1), T0 + 1)
    t.ingest(snap("b", active=False, placed=0, wrapped_up=9), T0 + 9)
    expected = [0] * len(Stage)
    for state in t.states.values():
        expected[state.stage] += 1
    assert t.stage_counts == expected == [0, 1, 0, 0, 0, 0]


def test_a_retimed_stall_keeps_one_timer() -> None:
    """A stall re-timed by every record leaves one timer behind, not one per record."""
    t = tracker()
    for step in range(5000):
        t.ingest(snap(placed=float(step)), T0 + step)
    assert t.timers == 1


def test_timely_move_raises_nothing() -> None:
    """A move recorded before the threshold, by the record's own time, raises no alert."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    assert t.ingest(snap(previewing=0, placed=200, routed=210, connected=220), T0 + 290) == []
    assert t.tick(T0 + 900) == []
    assert t.obs.firings == {}


def test_news_of_a_move_after_the_threshold_fires_then_resolves_with_the_true_duration() -> None:
    """Time passes before the record: a move seen after the threshold fires, then resolves."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    fired, resolved = t.ingest(snap(previewing=0, placed=200, connected=210), T0 + 900)
    assert (fired.status, fired.observed_at) == ("firing", T0 + 900)
    assert (resolved.status, resolved.resolution) == ("resolved", "moved_on")
    assert resolved.stalled_for == 200  # what the snapshots say it really lasted


def test_stall_interrupted_between_ticks_fires_and_resolves() -> None:
    """A stall due before the move that ended it, unseen by any tick, fires and resolves at once."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    fired, resolved = t.ingest(snap(previewing=0, placed=400), T0 + 405)
    assert (fired.status, resolved.status, resolved.resolution) == (
        "firing",
        "resolved",
        "moved_on",
    )
    assert to_alert(fired).alert_id == to_alert(resolved).alert_id
    assert resolved.stalled_for == 400
    assert t.stalled == {}
    assert t.tick(T0 + 459) == []  # the placed stage's own stall is not due before 460


def test_stall_interrupted_by_ending_fires_and_resolves() -> None:
    """A stall due before a wrap-up that ends the interaction is still reported, then resolved."""
    t = tracker(StallPolicy({"connected": 10}))
    t.ingest(snap(placed=0, connected=1), T0 + 1)
    alerts = t.ingest(snap(active=False, placed=0, connected=1, wrapped_up=30), T0 + 30)
    assert [(a.status, a.stall.rule, a.resolution) for a in alerts] == [
        ("firing", "connected", None),
        ("resolved", "connected", "wrapped_up"),
    ]


def test_eviction_at_the_cap_fires_a_due_stall_first() -> None:
    """An interaction evicted with a stall already due reports it, then resolves it."""
    t = tracker(cap=1)
    t.ingest(snap("old", previewing=0), T0)
    # a record of another interaction, read late: the old preview came due at 300
    events = t.ingest(snap("new", created=400), T0 + 400)
    assert [(e.interaction_id, e.status, e.resolution) for e in events] == [
        ("old", "firing", None),
        ("old", "resolved", "evicted"),
    ]
    assert events[1].stalled_for == 400


def test_expiry_fires_a_due_stall_first() -> None:
    """An idle interaction expiring with a stall due reports it, then resolves it."""
    t = tracker(ttl=1000)
    t.ingest(snap("idle", previewing=0), T0)
    events = t.tick(T0 + 5000)
    assert [(e.status, e.resolution) for e in events] == [
        ("firing", None),
        ("resolved", "expired"),
    ]


def test_resolutions_carry_how_long_the_stall_really_lasted() -> None:
    """Tombstone, expiry, eviction and a bare closing resolve with the time up to when seen."""
    durations = {}
    t = tracker(ttl=1000, cap=2)
    t.ingest(snap("tomb", previewing=0), T0)
    t.tick(T0 + 301)
    (resolved,) = t.ingest(Tombstone("tomb"), T0 + 350)
    durations["tombstone"] = resolved.stalled_for
    power = snap("closed", mode="power", active=True, placed=0)  # watched while active
    t.ingest(power, T0 + 360)
    t.tick(T0 + 420)  # placed threshold 60: fired
    closing = snap("closed", mode="power", active=False, placed=0)  # no newer time
    (resolved,) = t.ingest(closing, T0 + 500)
    durations[resolved.resolution or ""] = resolved.stalled_for
    assert durations == {"tombstone": 350, "moved_on": 500}


def _budgeted(interactions: int, n: int, policy: StallPolicy | None = None) -> list[Tracker]:
    """``n`` trackers (a process's partitions) sharing one budget of ``interactions``.

    With no stall rule by default (``created`` off), so that what is shed has no stall.
    """
    trackers: list[Tracker] = []
    budget = Budget(interactions, lambda: trackers)
    for _ in range(n):
        trackers.append(
            Tracker(
                policy or StallPolicy({"created": 0}), Limits(3600.0, 1000, budget), Observations()
            )
        )
    return trackers


def test_the_budget_sheds_the_least_recently_updated_of_the_whole_process() -> None:
    """Past the budget, the interaction updated longest ago goes, whichever tracker holds it."""
    a, b = _budgeted(3, 2)
    a.ingest(snap("a1", created=0), T0)
    b.ingest(snap("b1", created=1), T0 + 1)
    a.ingest(snap("a2", created=2), T0 + 2)
    b.ingest(snap("b2", created=3), T0 + 3)  # the fourth: a1, in the other tracker, goes
    assert (list(a.states), list(b.states)) == (["a2"], ["b1", "b2"])
    a.ingest(snap("a2", created=2, previewing=4), T0 + 4)  # a2 is fresh again
    b.ingest(snap("b3", created=5), T0 + 5)  # b1 is now the oldest of the process
    assert (list(a.states), list(b.states)) == (["a2"], ["b2", "b3"])
    assert a.budget is not None
    assert a.budget.used == 3
    assert a.obs.shed == {("budget", "none"): 1} == b.obs.shed
    assert a.obs.removals == {"evicted": 1} == b.obs.removals


def test_a_shed_stall_is_counted_and_a_fired_one_resolves_with_its_trackers_next_tick() -> None:
    """A shed fired stall resolves as evicted with its own tracker's tick; a running one counts."""
    a, b = _budgeted(2, 2, StallPolicy({"previewing": 10}))
    a.ingest(snap("fired", previewing=0), T0)
    assert statuses(a.tick(T0 + 20)) == [("firing", "fired", "previewing")]
    a.ingest(snap("running", previewing=21), T0 + 21)
    b.ingest(snap("new-1", created=22), T0 + 22)
    b.ingest(snap("new-2", created=23), T0 + 23)
    assert (list(a.states), list(b.states)) == ([], ["new-1", "new-2"])
    assert b.obs.shed == {}
    assert a.obs.shed == {("budget", "fired"): 1, ("budget", "pending"): 1}
    (resolved,) = a.tick(T0 + 24)
    assert (resolved.interaction_id, resolved.status, resolved.resolution) == (
        "fired",
        "resolved",
        "evicted",
    )
    assert a.stalled == {}
    assert a.tick(T0 + 100) == []


def test_a_tracker_given_up_stops_counting_against_the_budget() -> None:
    """The interactions of a tracker no longer listed (a revoked partition) free the budget."""
    a, b = _budgeted(2, 2)
    a.ingest(snap("a1", created=0), T0)
    a.ingest(snap("a2", created=1), T0 + 1)
    assert a.budget is not None
    a.budget.trackers = lambda: [b]  # the partition of ``a`` was revoked
    b.ingest(snap("b1", created=2), T0 + 2)
    b.ingest(snap("b2", created=3), T0 + 3)
    assert list(b.states) == ["b1", "b2"]
    assert b.obs.shed == {}
    assert len(a) == 2


def test_a_restore_in_chunks_keeps_the_newest_within_the_budget() -> None:
    """Restored chunk by chunk past the budget, the least recently seen go, in any chunk order."""
    source = tracker()
    for n, seen in enumerate([5.0, 1.0, 6.0, 7.0, 0.5]):
        source.ingest(snap(f"x{n}", created=seen), T0 + seen)
    saved = {iid: (state, None) for iid, state in source.states.items()}
    (t,) = _budgeted(3, 1)
    assert t.restore({"x0": saved["x0"], "x1": saved["x1"]}) == []
    assert t.restore({"x2": saved["x2"], "x3": saved["x3"]}) == []  # x1 (seen at 1) goes
    assert t.restore({"x4": saved["x4"]}) == []  # older than all: in order, then gone
    assert list(t.states) == ["x0", "x2", "x3"]
    assert sum(t.stage_counts) == 3
    assert t.obs.shed == {("budget", "none"): 2}


def test_idle_interactions_still_expire_behind_a_shed_front() -> None:
    """After shedding and a restore out of order, the TTL still finds every idle interaction."""
    (t,) = _budgeted(2, 1)
    t.ingest(snap("a", created=0), T0)
    t.ingest(snap("b", created=10), T0 + 10)
    t.ingest(snap("c", created=20), T0 + 20)  # a is shed
    t.tick(T0 + 30)
    source = tracker()
    source.ingest(snap("late", created=15), T0 + 15)
    t.restore({"late": (source.states["late"], None)})  # between b and c: b goes
    assert list(t.states) == ["late", "c"]
    t.tick(T0 + 3600 + 16)
    assert list(t.states) == ["c"]
    t.tick(T0 + 3600 + 21)
    assert list(t.states) == []
    assert t.obs.removals == {"evicted": 2, "expired": 2}


def test_a_record_that_fails_to_apply_keeps_what_fell_due_before_it() -> None:
    """The stall its tick fired is owed, out with the next tick: a failing record loses no alert."""

    def broken() -> list[Tracker]:
        raise RuntimeError("a bug in the budget")

    t = Tracker(StallPolicy(), Limits(3600.0, 1000, Budget(1, broken)), Observations())
    t.ingest(snap("a", created=0, previewing=1), T0 + 1)
    # the newcomer takes the budget over: shedding raises, after the tick fired "a"
    with pytest.raises(RuntimeError, match="a bug in the budget"):
        t.ingest(snap("b", created=400), T0 + 400)
    assert statuses(t.tick(T0 + 400)) == [("firing", "a", "previewing")]
    assert t.tick(T0 + 401) == []
