"""The per-partition clock: event time while behind, wall time once caught up."""

from __future__ import annotations

from consumer.engine.clock import PartitionClock


def test_behind_partition_runs_on_record_time() -> None:
    """While behind, the clock is the newest record timestamp, not the wall clock."""
    clock = PartitionClock()
    assert clock.record(100.0) == 100.0
    assert clock.settle(5000.0, caught_up=False) == 100.0
    assert clock.record(90.0) == 100.0  # an older record does not move it back


def test_caught_up_partition_runs_on_wall_time() -> None:
    """Once caught up, the clock follows the wall clock even with no records."""
    clock = PartitionClock()
    clock.record(100.0)
    assert clock.settle(5000.0, caught_up=True) == 5000.0
    assert clock.settle(5001.5, caught_up=True) == 5001.5


def test_clock_never_goes_backwards() -> None:
    """A producer clock ahead of ours holds the partition at its time until the wall passes."""
    clock = PartitionClock()
    clock.record(6000.0)
    assert clock.settle(5000.0, caught_up=True) == 6000.0
    assert clock.settle(6000.5, caught_up=True) == 6000.5
