"""The stall timer wheel: due buckets, partly passed buckets, stale and repeated entries."""

from __future__ import annotations

import gc

from consumer.engine.stages import Stage
from consumer.engine.stalls import Stall
from consumer.engine.timers import Timers


def _stall(due: float) -> Stall:
    return Stall("placed", Stage.PLACED, due - 60.0, due - 60.0, 60.0)


def test_only_what_has_come_due_is_returned() -> None:
    """A timer is returned once its due time has passed, not a moment before, and once."""
    timers = Timers()
    running = {"a": _stall(100.0), "b": _stall(100.05), "c": _stall(105.0)}
    for iid, stall in running.items():
        timers.set(iid, stall.due)
    assert timers.pop_due(99.99, running.get) == []
    assert [iid for iid, _ in timers.pop_due(100.0, running.get)] == ["a"]
    assert [iid for iid, _ in timers.pop_due(100.05, running.get)] == ["b"]
    assert timers.pop_due(104.0, running.get) == []
    assert timers.pop_due(200.0, running.get) == [("c", running["c"])]
    assert timers.pop_due(300.0, running.get) == []
    assert len(timers) == 0


def test_stale_entries_are_dropped() -> None:
    """An id whose stall ended or moved to another bucket is not returned for the old one."""
    timers = Timers()
    timers.set("gone", 10.0)
    timers.set("moved", 10.0)
    running = {"moved": _stall(50.0)}
    timers.set("moved", 50.0)
    assert len(timers) == 3
    assert timers.pop_due(20.0, running.get) == []
    assert len(timers) == 1
    assert timers.pop_due(50.0, running.get) == [("moved", running["moved"])]


def test_a_discarded_timer_is_gone() -> None:
    """Discarding removes the entry at once; discarding an absent one changes nothing."""
    timers = Timers()
    timers.set("a", 10.0)
    timers.discard("a", 10.0)
    timers.discard("a", 10.0)
    timers.discard("b", 99.0)
    assert len(timers) == 0
    assert timers.pop_due(20.0, {"a": _stall(10.0)}.get) == []


def test_setting_the_same_timer_again_adds_no_entry() -> None:
    """Re-setting a timer in the same bucket replaces it: entries do not pile up."""
    timers = Timers()
    for _ in range(100):
        timers.set("a", 10.0)
    assert len(timers) == 1


def test_timers_are_not_tracked_by_the_garbage_collector() -> None:
    """The buckets of ids are invisible to the collector, so a million timers cost no pause."""
    timers = Timers()
    for n in range(1000):
        timers.set(f"i-{n}", float(n))
    gc.collect()
    assert not any(gc.is_tracked(bucket) for bucket in timers._buckets.values())
