"""The per-partition clock: event time while behind, wall time once caught up, bounded."""

from __future__ import annotations

from consumer.engine.clock import PartitionClock

WALL = 10_000.0


def test_behind_partition_runs_on_record_time() -> None:
    """While behind, the clock is the newest record timestamp, not the wall clock."""
    clock = PartitionClock()
    assert clock.record(100.0, WALL)
    assert clock.now == 100.0
    assert clock.settle(WALL, caught_up=False) == 100.0
    assert clock.record(90.0, WALL)  # an older record does not move it back
    assert clock.now == 100.0


def test_caught_up_partition_runs_on_wall_time() -> None:
    """Once caught up, the clock follows the wall clock even with no records."""
    clock = PartitionClock()
    clock.record(100.0, WALL)
    assert clock.settle(5000.0, caught_up=True) == 5000.0
    assert clock.settle(5001.5, caught_up=True) == 5001.5


def test_clock_never_goes_backwards() -> None:
    """A producer clock within the skew holds the partition at its time until the wall passes."""
    clock = PartitionClock(max_skew=60.0)
    assert clock.record(5030.0, 5000.0)
    assert clock.settle(5000.0, caught_up=True) == 5030.0
    assert clock.settle(5030.5, caught_up=True) == 5030.5


def test_timestamp_beyond_the_skew_moves_nothing() -> None:
    """A record stamped ten years ahead is reported as from the future and leaves time alone."""
    clock = PartitionClock(max_skew=60.0)
    clock.record(WALL - 5, WALL)
    assert not clock.record(WALL + 10 * 365 * 86400, WALL)
    assert clock.now == WALL - 5
    assert clock.newest_record == WALL - 5
    assert clock.settle(WALL + 1, caught_up=True) == WALL + 1


def test_timestamp_at_the_bound_is_believed() -> None:
    """Exactly max_skew ahead is still credible; a millisecond more is not."""
    clock = PartitionClock(max_skew=60.0)
    assert clock.record(WALL + 60.0, WALL)
    assert clock.now == WALL + 60.0
    assert not clock.record(WALL + 60.001, WALL)


def test_far_past_timestamps_move_nothing() -> None:
    """A record from long ago neither moves the clock back nor counts as future."""
    clock = PartitionClock()
    clock.record(WALL, WALL)
    assert clock.record(1.0, WALL)
    assert clock.now == WALL


def test_no_timestamp_moves_nothing() -> None:
    """A timestamp of zero or less is no timestamp at all."""
    clock = PartitionClock()
    assert clock.record(0.0, WALL)
    assert clock.record(-1.0, WALL)
    assert clock.now == 0.0


def test_after_a_restart_the_clock_starts_from_the_records() -> None:
    """A fresh clock (new owner) starts at zero and takes the first credible record's time."""
    clock = PartitionClock()
    assert clock.now == 0.0
    assert not clock.caught_up
    assert not clock.record(WALL + 3600, WALL)
    assert clock.record(WALL - 600, WALL)
    assert clock.now == WALL - 600


def test_caught_up_clock_stops_at_the_last_broker_answer() -> None:
    """While the broker is away the clock holds where the broker last confirmed the end."""
    clock = PartitionClock()
    clock.settle(WALL, caught_up=True, confirmed=WALL)
    assert clock.settle(WALL + 30, caught_up=True, confirmed=WALL + 3) == WALL + 3
    assert clock.settle(WALL + 31, caught_up=True, confirmed=WALL + 31) == WALL + 31


def test_heartbeats_bound_the_clock_at_what_they_vouch_for() -> None:
    """On a heartbeat partition time runs no further than the vouched up_to: no grace added."""
    clock = PartitionClock()
    clock.vouch(WALL)
    assert clock.settle(WALL + 100, caught_up=True) == WALL
    assert clock.record(WALL + 90, WALL + 100)  # a record alone does not vouch for time
    assert clock.now == WALL
    clock.vouch(WALL + 95)
    assert clock.settle(WALL + 100, caught_up=True) == WALL + 95
