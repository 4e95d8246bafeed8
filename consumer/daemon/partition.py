"""One assigned partition as the batch step keeps it: trackers, clock, position, trust.

Its interactions are tracked per source (:class:`SourceLane`), each judged on the time its
own source vouches for; those whose records name no source in :attr:`PartitionState.tracker`.

The broker's answers are the monitor's eyes. :meth:`PartitionState.confirmed` says when
the broker last confirmed the partition's end, if that can be trusted now: not while its
answers have stopped (the broker is away), and not during a short grace after they come
back, while producers flush what they held meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from consumer.engine.clock import PartitionClock
from consumer.engine.sources import MAX_SOURCES, SourceState
from consumer.engine.tracker import Tracker

# fetch answers come every half second or faster (the broker's fetch wait): an answer older
# than this means the broker is away; after it, producers get this long to flush
ANSWER_GAP: Final = 2.0
RESUME_GRACE: Final = 5.0


class PartitionView(NamedTuple):
    """One assigned partition as metrics and readiness see it, computed once per batch."""

    topic: str
    partition: int
    lag: int | None
    event_time_lag: float | None
    caught_up: bool
    heartbeat: float | None  # the up_to its heartbeat sources all vouch for, if it has any
    progressed_at: float  # monotonic time of the last record or catch-up
    restoring: bool


class SourceLane:
    """The interactions one heartbeat source published to a partition, and their time.

    Their time is :meth:`PartitionClock.time_of
    <consumer.engine.clock.PartitionClock.time_of>` that source, kept from going backwards
    (a source's first heartbeat may vouch for less than the partition's time so far).
    An interaction id published by two sources is tracked in each one's lane (both are
    saved under the id, so a new owner restores only the one saved last).
    """

    __slots__ = ("now", "tracker")

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.now = 0.0

    def advance(self, moment: float) -> float:
        """Time passes to ``moment``, never backwards; returns the lane's time."""
        if moment > self.now:
            self.now = moment
        return self.now


@dataclass
class PartitionState:
    """The step's bookkeeping for one assigned partition."""

    tracker: Tracker  # the interactions whose records name no source
    clock: PartitionClock
    new_tracker: Callable[[], Tracker]
    lanes: dict[str, SourceLane] = field(default_factory=dict)  # source -> its interactions
    forward: bool = False  # an input partition re-keyed into the repartition topic
    # repartition mode: records forwarded to this partition end before this offset; it is
    # not caught up until it has read them (they are behind it, though not yet in its lag)
    awaiting: int = 0
    restoring: bool = False  # its state is being restored: not processed meanwhile
    next_offset: int | None = None  # after the last applied record
    # after the last record whose effect on the state is in the outputs handed over: the
    # offset that may be committed once they are acknowledged
    saved_offset: int | None = None
    saved_at: float = float("-inf")  # monotonic time the changed state was last saved
    progressed_at: float = 0.0
    # its heartbeat sources, saved with its interactions; those changed since the last save
    # (a name no longer among them was retired: its saved state goes)
    sources: dict[str, SourceState] = field(default_factory=dict)
    sources_dirty: set[str] = field(default_factory=set)
    warned: dict[str, float] = field(default_factory=dict)  # warning event -> when, wall
    away: bool = False  # the broker's answers stopped (an outage)
    resumed: float | None = None  # when they came back

    def lane(self, source: str) -> SourceLane | None:
        """The lane of ``source``'s interactions, new if it has none yet; ``None`` when full.

        At most :data:`~consumer.engine.sources.MAX_SOURCES` lanes: a flood of source names
        (in records, or saved with restored interactions) must not grow one tracker each.
        """
        lane = self.lanes.get(source)
        if lane is None and len(self.lanes) < MAX_SOURCES:
            lane = self.lanes[source] = SourceLane(self.new_tracker())
        return lane

    def tracker_of(self, source: str) -> Tracker:
        """The tracker of ``source``'s interactions (for the restore): no lane, none's."""
        lane = self.lane(source)
        return self.tracker if lane is None else lane.tracker

    def trackers(self) -> list[Tracker]:
        """Every tracker of the partition: the one without a source, then one per source."""
        return [self.tracker, *(lane.tracker for lane in self.lanes.values())]

    def time_of(self, source: str) -> float:
        """The time ``source``'s interactions are judged at now (see :class:`SourceLane`)."""
        known = self.sources.get(source)
        return self.clock.time_of(None if known is None else known.up_to)

    def confirmed(self, answered: float | None, wall: float) -> float | None:
        """When the broker last confirmed the partition's end, if that can be trusted now.

        An answer older than :data:`ANSWER_GAP` means the broker is away: nothing is
        confirmed. When answers resume, producers flush what they held meanwhile: for
        :data:`RESUME_GRACE` seconds the partition runs on its records' own times, so a move
        made during the outage is applied before time passes it.
        """
        if answered is None:
            return None  # not fetched yet: nothing confirmed, nothing held back either
        if wall - answered > ANSWER_GAP:
            self.away = True
            return None
        if self.away:
            self.away, self.resumed = False, answered
        if self.resumed is not None and answered - self.resumed < RESUME_GRACE:
            return None
        return answered
