"""Saved state: what a tracker writes, a new owner reads back, with stalls as they were."""

from __future__ import annotations

from consumer.engine import changelog
from consumer.engine.lifecycle import Interaction
from consumer.engine.stalls import Alert, Stall, StallPolicy
from consumer.engine.tracker import Tracker
from tests.unit.factory import T0, snap, statuses, tracker


def saved(t: Tracker) -> dict[str, tuple[Interaction, tuple[Alert, Stall] | None]]:
    """Everything a tracker would write, read back through the codec."""
    out = {}
    for iid, state in t.states.items():
        restored = changelog.decode(changelog.encode(state, t.stalled.get(iid)))
        assert restored is not None
        out[iid] = restored
    return out


def test_state_and_fired_stall_survive_the_round_trip() -> None:
    """A restored tracker has the same interactions, stages and fired alerts."""
    old = tracker()
    old.apply(snap("a", created=0, previewing=1), T0 + 1)
    old.apply(snap("b", placed=0, routed=2), T0 + 2)
    old.tick(T0 + 400)
    new = tracker()
    new.restore(saved(old))
    assert new.states == old.states
    assert new.stalled == old.stalled
    assert new.stage_counts == old.stage_counts


def test_fired_stall_is_not_fired_again_after_restore() -> None:
    """A stall that fired before the restart stays fired: no second firing."""
    old = tracker()
    old.apply(snap(previewing=0), T0)
    assert len(old.tick(T0 + 301)) == 1
    new = tracker()
    new.restore(saved(old))
    assert new.tick(T0 + 3000) == []  # within the TTL, long past the threshold
    (resolved,) = new.apply(snap(previewing=0, placed=500), T0 + 500)
    assert resolved.status == "resolved"


def test_stall_due_during_downtime_fires_once_after_restore() -> None:
    """A stall that came due while nobody owned the partition fires once, on the next tick."""
    old = tracker()
    old.apply(snap(previewing=0), T0)
    new = tracker(StallPolicy())
    new.restore(saved(old))
    assert statuses(new.tick(T0 + 900)) == [("firing", "i-1", "previewing")]
    assert new.tick(T0 + 901) == []


def test_changes_are_reported_once_for_saving() -> None:
    """Changed, fired and removed interactions are handed out once for the changelog."""
    t = tracker()
    t.apply(snap("a", previewing=0), T0)
    t.apply(snap("b", active=False, placed=0, wrapped_up=5), T0 + 5)
    assert t.take_dirty() == {"a", "b"}
    assert t.take_dirty() == set()
    t.apply(snap("a", previewing=0), T0 + 6)  # a duplicate changes nothing worth saving
    assert t.take_dirty() == set()
    t.tick(T0 + 400)
    assert t.take_dirty() == {"a"}


def test_unreadable_values_are_rejected_not_raised() -> None:
    """Garbage or another format version decodes to None."""
    assert changelog.decode(b"\xc1garbage") is None
    valid = changelog.encode(tracker_state(), None)
    assert changelog.decode(valid.replace(b"\x01", b"\x07", 1)) is None


def tracker_state() -> Interaction:
    """One merged interaction."""
    t = tracker()
    t.apply(snap(previewing=0), T0)
    return t.states["i-1"]
