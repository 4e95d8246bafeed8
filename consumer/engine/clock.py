"""Per-partition time: event time while behind, the wall clock once caught up. Pure.

A stall is silence, and silence produces no records, so stall timers must run on a
clock, not only on arriving records. But right after a restart a partition's backlog
shows interactions that have long since moved on: judged by the wall clock, each one
would look stalled until the record that moved it on is read. So each partition keeps
its own clock, which never goes backwards:

* while the partition is behind (records left to read), its time is the newest record
  timestamp read from it (event time): the backlog is judged as it happened. Time
  passes *before* each record: the caller ticks the tracker at the record's time, then
  applies it, so a closing that shares a batch with a threshold still reports the stall;
* once caught up, its time is the wall clock, so a quiet partition still raises stalls
  on time, but only as far as the broker confirmed that nothing more was there
  (``confirmed``, the wall time of the last fetch answer): while the broker is away the
  monitor sees nothing, and its clock stops instead of firing stalls it cannot judge.

Three bounds keep one bad timestamp from firing a partition:

* **a producer's clock is evidence, not authority**: a timestamp more than
  ``max_skew`` seconds ahead of the wall clock does not move the clock (the record is
  still applied; the caller counts and warns);
* **no stall is judged on time a source has not vouched for**: on a partition that has
  received heartbeats, an interaction is judged no further than its own source vouches
  (:meth:`PartitionClock.time_of`: ``latest``, the partition's time, bounded by that
  source's newest ``up_to``), whatever record timestamps or the wall clock say. Nothing
  is added to it: a move made after ``up_to`` may not be published yet, and judging it
  would page an agent who did nothing wrong (a stall is reported up to one heartbeat
  interval after its threshold instead). Not even the producer-clock skew: a producer
  whose clock lags only delays the reports, and one whose clock runs ahead would be
  trusted further than it saw. A source that stops publishing stops the clock of its
  own interactions, not of another source's: a dead feed is one alert
  (``source_silent``), not a stall for every interaction in flight. An interaction whose
  source is not known (its records name none, or that source sent no heartbeat here) is
  judged at ``now``: no further than ``vouched``, the ``up_to`` all the partition's
  sources vouch for (:func:`consumer.engine.sources.vouched`), the conservative choice.
  A partition that never saw a heartbeat is not bounded so;
* timestamps at or below zero mean "no timestamp" and move nothing.
"""

from __future__ import annotations


class PartitionClock:
    """The clock of one partition."""

    def __init__(self, max_skew: float = 60.0) -> None:
        self.max_skew = max_skew
        self.now = 0.0
        self.newest_record = 0.0  # newest credible record timestamp, for event-time lag
        self.latest = 0.0  # the partition's time, unbounded by heartbeats
        self.caught_up = False
        # heartbeat partitions: the time up to which its sources vouch (None: no bound)
        self.vouched: float | None = None

    def credible(self, moment: float, wall: float) -> bool:
        """``moment`` is not further ahead of the wall clock than the skew allowed."""
        return moment <= wall + self.max_skew

    def record(self, timestamp: float, wall: float) -> bool:
        """A record stamped ``timestamp`` was read at ``wall``; ``False`` if from the future.

        A credible timestamp advances the clock (never backwards, and on a heartbeat
        partition no further than the source vouches); one from the future moves nothing.
        """
        if timestamp <= 0:
            return True  # no timestamp: nothing to believe or doubt
        if timestamp > wall + self.max_skew:
            return False
        if timestamp > self.newest_record:
            self.newest_record = timestamp
        if timestamp > self.latest:
            self.latest = timestamp
        vouched = self.vouched
        target = timestamp if vouched is None or timestamp < vouched else vouched
        if target > self.now:
            self.now = target
        return True

    def vouch(self, up_to: float | None) -> None:
        """From now on the clock runs no further than ``up_to`` (``None``: no heartbeats)."""
        self.vouched = up_to

    def settle(self, wall: float, *, caught_up: bool, confirmed: float | None = None) -> float:
        """After a batch: whether the partition is caught up; returns the time now.

        ``confirmed`` is the wall time at which the broker last answered a fetch of this
        partition (``None``: take the wall clock's word). A partition that is not caught
        up keeps its event time.
        """
        self.caught_up = caught_up
        if caught_up:
            target = wall if confirmed is None or confirmed > wall else confirmed
            if target > self.latest:
                self.latest = target
            if self.vouched is not None and self.vouched < target:
                target = self.vouched
            if target > self.now:
                self.now = target
        return self.now

    def time_of(self, up_to: float | None) -> float:
        """The time of the interactions of a source vouching up to ``up_to``.

        ``None``: a record that names no source, or one whose source sent no heartbeat
        here: judged at ``now``, as far as all the partition's sources vouch.
        """
        if up_to is None:
            return self.now
        return up_to if up_to < self.latest else self.latest
