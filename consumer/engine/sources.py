"""Which sources are alive: heartbeats per partition, and one alert per silent source. Pure.

A producer that sends heartbeats (:mod:`consumer.formats.heartbeat`) sends one to every
partition after each round. Each partition keeps, per source, a :class:`SourceState`: the
newest heartbeat's ``up_to``, the interval it promised, and whether the source is silent
there and since which ``up_to``. That state is the partition's, like its interactions:
saved with them in the changelog (:mod:`consumer.formats.changelog`) and restored by the
partition's next owner before it judges anything, so a restart or a rebalance neither
restarts the clock of a dead feed nor forgets the alert it raised.

Silence is judged only where the monitor can see: on a caught-up partition, with the
broker's last answer (``confirmed``) as "now" (while the monitor itself is behind or cut
off, a missing heartbeat proves nothing). A source is silent on a partition when its
newest ``up_to`` there is older than :meth:`SourceWatch.silent_after` allows: the
configured silence, but never less than the source's interval plus its grace (unset: one
more interval), so a source that beats slowly is not called silent between two beats.

A :class:`SourceWatch` gathers, per topic, what this instance's partitions say: a source
silent on any of them is one ``firing`` alert, ``resolved`` once it is silent on none.
Its ``alertId`` derives from the topic, the source and the ``up_to`` at which the silence
began, the same on every partition, so every owner, before and after a restart or a
rebalance, speaks of the same alert. A silence restored with a partition is the previous
owner's alert continued (:meth:`SourceWatch.adopt`), not a new one; a partition given up
takes its silences with it, to its next owner (:meth:`SourceWatch.forget`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

import msgspec

SourceStatus = Literal["firing", "resolved"]

# the heartbeat intervals believed: outside, a heartbeat is refused (one of 86400 s would
# switch dead-feed protection off for days)
MIN_INTERVAL: Final = 0.1
MAX_INTERVAL: Final = 3600.0
# heartbeat sources (and per-source trackers) one partition keeps at most: a producer bug
# that names a new source in every record must not grow the state, the changelog and the
# alerts without bound. A real topic has a few (one poller per org).
MAX_SOURCES: Final = 32


class SourceEvent(msgspec.Struct, frozen=True, gc=False):
    """A source went silent, or spoke again: plain values, formatted at the edge."""

    status: SourceStatus
    topic: str
    source: str
    last_up_to: float  # the newest heartbeat's up_to when the silence began
    threshold: float
    observed_at: float
    silent_for: float
    resolution: str | None = None  # "retired": an operator retired the source


class SourceState:
    """One source as one partition knows it."""

    def __init__(
        self, up_to: float, interval: float | None, silent_since: float | None = None
    ) -> None:
        self.up_to = up_to  # the newest heartbeat's up_to
        self.interval = interval  # the interval that heartbeat promised, if it said
        self.silent_since = silent_since  # silent: the up_to at which the silence began

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceState):
            return NotImplemented
        return (self.up_to, self.interval, self.silent_since) == (
            other.up_to,
            other.interval,
            other.silent_since,
        )

    def __repr__(self) -> str:
        return f"SourceState({self.up_to!r}, {self.interval!r}, {self.silent_since!r})"


def interval_believed(interval: float | None) -> bool:
    """A heartbeat promising ``interval`` seconds may be believed (none promised: yes)."""
    return interval is None or MIN_INTERVAL <= interval <= MAX_INTERVAL


def vouched(sources: dict[str, SourceState]) -> float | None:
    """How far the partition's sources all vouch for time; ``None`` without sources.

    The oldest of their newest heartbeats: the bound of the interactions whose records
    name no source (or one that sent no heartbeat here). Nobody in particular vouches for
    them, so any source that stops publishing stops their clock. An interaction whose
    source is known is bounded by that source alone (:meth:`PartitionClock.time_of
    <consumer.engine.clock.PartitionClock.time_of>`).
    """
    bound: float | None = None
    for state in sources.values():
        if bound is None or state.up_to < bound:
            bound = state.up_to
    return bound


class SourceWatch:
    """The heartbeat sources of one topic, as this instance sees its partitions."""

    def __init__(self, topic: str, silent_after: float, grace: float | None = None) -> None:
        self.topic = topic
        self.silent_seconds = silent_after
        self.grace = grace  # None: from each source's interval
        self.firing: dict[str, float] = {}  # source -> up_to its alert's silence began at

    def silent_after(self, state: SourceState) -> float:
        """How old a source's newest heartbeat may be before it counts as silent."""
        interval = state.interval or 0.0
        grace = self.grace if self.grace is not None else interval
        return max(self.silent_seconds, interval + grace)

    @property
    def silent(self) -> int:
        """How many sources are silent now."""
        return len(self.firing)

    def judge(self, sources: dict[str, SourceState], confirmed: float) -> list[str]:
        """Judge one caught-up partition's sources at ``confirmed``; the sources it changed."""
        changed = []
        for name, state in sources.items():
            silent = confirmed - state.up_to > self.silent_after(state)
            if silent and state.silent_since is None:
                state.silent_since = state.up_to
                changed.append(name)
            elif not silent and state.silent_since is not None:
                state.silent_since = None
                changed.append(name)
        return changed

    def adopt(self, sources: dict[str, SourceState]) -> None:
        """A restored partition's silences: alerts its previous owner raised, continued."""
        for name, state in sources.items():
            if state.silent_since is not None and name not in self.firing:
                self.firing[name] = state.silent_since

    def gather(self, partitions: Iterable[dict[str, SourceState]], now: float) -> list[SourceEvent]:
        """After judging: a source silent on some owned partition fires, on none resolves."""
        silent: dict[str, SourceState] = {}
        for sources in partitions:
            for name, state in sources.items():
                if state.silent_since is not None and name not in silent:
                    silent[name] = state
        events = []
        for name, state in silent.items():
            if name not in self.firing:
                assert state.silent_since is not None
                self.firing[name] = state.silent_since
                events.append(self._event("firing", name, state.silent_since, state, now))
        for name in [n for n in self.firing if n not in silent]:
            since = self.firing.pop(name)
            events.append(self._event("resolved", name, since, None, now))
        return events

    def forget(self, left: Iterable[dict[str, SourceState]]) -> None:
        """Partitions were given up; ``left`` are the ones still owned.

        A silence only the given-up partitions knew goes with them to their next owner,
        which continues its alert: nothing is said of it here.
        """
        still = {n for sources in left for n, s in sources.items() if s.silent_since is not None}
        for name in [n for n in self.firing if n not in still]:
            del self.firing[name]

    def retire(self, name: str, since: float, now: float) -> SourceEvent:
        """``name``, silent since ``since``, was retired by an operator: resolved as such."""
        self.firing.pop(name, None)
        return self._event("resolved", name, since, None, now, "retired")

    def alert(self, name: str, state: SourceState, now: float) -> SourceEvent:
        """The firing event of a source silent on a partition (to re-announce it)."""
        since = state.silent_since if state.silent_since is not None else state.up_to
        return self._event("firing", name, since, state, now)

    def _event(
        self,
        status: SourceStatus,
        name: str,
        since: float,
        state: SourceState | None,
        now: float,
        resolution: str | None = None,
    ) -> SourceEvent:
        threshold = self.silent_seconds if state is None else self.silent_after(state)
        return SourceEvent(
            status, self.topic, name, since, threshold, now, max(0.0, now - since), resolution
        )
