"""Per-partition time: event time while behind, the wall clock once caught up. Pure.

A stall is silence, and silence produces no records, so stall timers must run on a
clock, not only on arriving records. But right after a restart a partition's backlog
shows interactions that have long since moved on: judged by the wall clock, each one
would look stalled until the record that moved it on is read. So each partition keeps
its own clock:

* while the partition is behind (records left to read), its time is the newest record
  timestamp read from it (event time): the backlog is judged as it happened;
* once caught up, its time is the wall clock, so a quiet partition still raises stalls
  on time.

The clock never goes backwards: a producer whose clock runs ahead of ours keeps the
partition at its timestamps until the wall clock passes them. The skew between record
timestamps and the wall clock is exported, because it bounds how early or late a stall
can be seen.
"""

from __future__ import annotations


class PartitionClock:
    """The clock of one partition."""

    def __init__(self) -> None:
        self.now = 0.0
        self.newest_record = 0.0
        self.caught_up = False

    def record(self, timestamp: float) -> float:
        """A record with this broker/producer timestamp was read; returns the time now."""
        if timestamp > self.newest_record:
            self.newest_record = timestamp
        if timestamp > self.now:
            self.now = timestamp
        return self.now

    def settle(self, wall: float, *, caught_up: bool) -> float:
        """After a batch: whether the partition has caught up; returns the time now."""
        self.caught_up = caught_up
        if caught_up and wall > self.now:
            self.now = wall
        return self.now
