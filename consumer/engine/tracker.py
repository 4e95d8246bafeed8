"""Per-partition tracking: merge snapshots, keep stall timers, evict, count. Pure.

A :class:`Tracker` owns the interactions of one partition (or of one replay). It never
reads a clock: every call takes ``now``, the caller's notion of time (event time in a
replay or a backlog, the wall clock once caught up). Invariants:

* time passes before each record: :meth:`Tracker.ingest` first fires every stall due by
  the record's time, then applies the record, so a closing that shares a batch with a
  threshold still reports the stall (and resolves it with its real duration);
* an interaction is in ``states`` from its first snapshot until it ends (tombstone,
  wrapped up and inactive, conversation over and inactive), idles past the TTL, or is
  evicted as the least recently updated when the cap is reached. Every removal is
  counted by reason in :class:`Observations`, and a stall due by then fires first;
* an ended interaction is remembered (id and how far it got) for the TTL, so a late echo
  of it is ignored instead of resurrecting it; only a newer preview or call reopens it;
* each stall's alert follows the table of :mod:`consumer.engine.alerting`: ``stalled``
  holds the fired stall of each stalled interaction, it fires once, and exactly one
  resolved event follows when the interaction moves on or leaves;
* stall timers sit in a :class:`~consumer.engine.timers.Timers` wheel; an entry is
  discarded when its stall changes or ends, re-checked when due (stale ones, of
  interactions that expired or were evicted, are dropped), and the wheel is rebuilt should
  stale entries ever outnumber live interactions.
"""

from __future__ import annotations

import typing
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal

from consumer.engine import alerting, lifecycle
from consumer.engine.alerting import Fired, Removal, Resolution, StallEvent
from consumer.engine.lifecycle import LABELS, STAGES, Interaction, Snapshot, Stage, Tombstone
from consumer.engine.stalls import Stall, StallPolicy
from consumer.engine.timers import Timers

# What became of one consumed record (``invalid``, dead-lettered, is counted by the caller).
Outcome = Literal["applied", "duplicate", "late", "ended", "tombstone", "invalid"]
OUTCOMES: Final[tuple[Outcome, ...]] = typing.get_args(Outcome)

KNOWN_MODES: Final = frozenset(
    {"preview", "power", "predictive", "progressive", "agentless", "external", "unknown"}
)


def mode_label(mode: str | None) -> str:
    """A bounded label for a dialing mode: the known ones, ``unknown`` or ``other``."""
    if mode is None:
        return "unknown"
    return mode if mode in KNOWN_MODES else "other"


@dataclass
class Observations:
    """What happened since the metrics last looked: plain counts, drained once per batch."""

    events: Counter[Outcome] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: list[tuple[str, str, float]] = field(default_factory=list)
    removals: Counter[Removal] = field(default_factory=Counter)
    firings: Counter[str] = field(default_factory=Counter)

    def drain(self) -> Observations:
        """Hand over everything observed so far and start afresh."""
        taken = Observations(
            self.events, self.transitions, self.latencies, self.removals, self.firings
        )
        self.events, self.transitions, self.latencies = Counter(), Counter(), []
        self.removals, self.firings = Counter(), Counter()
        return taken


@dataclass(frozen=True)
class Limits:
    """Bounds on what one tracker holds."""

    ttl_seconds: float = 4 * 3600.0
    max_interactions: int = 1_000_000


# the alert of one interaction before a change: fired, pending (a stall running), or none
_Alert = Fired | Stall | None


class Tracker:
    """The interactions of one partition, their stages and their stalls."""

    def __init__(self, policy: StallPolicy, limits: Limits, observations: Observations) -> None:
        self.policy = policy
        self.limits = limits
        self.obs = observations
        # insertion order is least-recently-updated first: TTL and cap evict from the front
        self.states: dict[str, Interaction] = {}
        # id -> (version it ended at, tracker time it ended), oldest first
        self.ended: dict[str, tuple[float, float]] = {}
        self.stalled: dict[str, Fired] = {}
        self.stage_counts = [0] * len(STAGES)
        # ids whose persisted form changed since the owner last took them (see changelog)
        self.dirty: set[str] = set()
        self._timers = Timers()

    def __len__(self) -> int:
        return len(self.states)

    @property
    def timers(self) -> int:
        """Stall timers held, stale ones included (for the memory benchmark)."""
        return len(self._timers)

    # -- input ----------------------------------------------------------------------

    def ingest(self, item: Snapshot | Tombstone, now: float) -> list[StallEvent]:
        """Time passes to ``now``, then the record: what fell due fires, then ``item`` applies."""
        events = self.tick(now)
        if isinstance(item, Tombstone):
            events += self._end(item.interaction_id, now)
        else:
            events += self._apply(item, now)
        return events

    def restore(self, saved: dict[str, tuple[Interaction, Fired | None]]) -> None:
        """Take back interactions saved by a previous owner, with the stalls they had fired.

        Fired stalls stay fired (they are not raised again); unfired ones get timers, so a
        stall that came due while nobody owned the partition fires once, at the next tick.
        """
        for iid, (state, fired) in sorted(saved.items(), key=lambda item: item[1][0].seen):
            self.states[iid] = state
            self.stage_counts[state.stage] += 1
            if fired is not None:
                self.stalled[iid] = fired
        self._rebuild_timers()

    def retime(self) -> None:
        """Set every stall timer afresh: the policy's thresholds changed."""
        self._rebuild_timers()

    def take_dirty(self) -> set[str]:
        """The ids changed since the last call; the caller persists them."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def tick(self, now: float) -> list[StallEvent]:
        """Advance to ``now``: fire the stalls that are due, expire idle interactions."""
        events = [
            self._fire(iid, self.states[iid], stall, now)
            for iid, stall in self._timers.pop_due(now, self._running)
        ]
        horizon = now - self.limits.ttl_seconds
        idle = []
        for iid, state in self.states.items():  # oldest first: stop at the first fresh one
            if state.seen >= horizon:
                break
            idle.append(iid)
        for iid in idle:
            events += self._remove(iid, "expired", now)
        forgotten = []
        for iid, (_, at) in self.ended.items():
            if at >= horizon:
                break
            forgotten.append(iid)
        for iid in forgotten:
            del self.ended[iid]
        return events

    # -- inside ---------------------------------------------------------------------

    def _apply(self, snap: Snapshot, now: float) -> list[StallEvent]:
        iid = snap.interaction_id
        state = self.states.get(iid)
        if state is None:
            return self._first(snap, now)
        stage_before = state.stage
        before = self._alert(iid, state)
        reached = lifecycle.merge(state, snap)
        self._touch(iid, state, now)
        if reached is None:
            self.obs.events["late" if snap.version < state.version else "duplicate"] += 1
            return []
        self.obs.events["applied"] += 1
        if state.stage is not stage_before:
            self.stage_counts[stage_before] -= 1
            self.stage_counts[state.stage] += 1
        self._observe(state, reached)
        return self._settle(iid, state, now, before)

    def _end(self, interaction_id: str, now: float) -> list[StallEvent]:
        """A tombstone: the producer deleted the interaction."""
        self.obs.events["tombstone"] += 1
        state = self.states.get(interaction_id)
        version = now if state is None else max(now, state.version)
        self._remember_end(interaction_id, version, now)
        return [] if state is None else self._remove(interaction_id, "tombstone", now)

    def _first(self, snap: Snapshot, now: float) -> list[StallEvent]:
        iid = snap.interaction_id
        ended = self.ended.get(iid)
        if ended is not None:
            if not lifecycle.starts_new_call(snap, ended[0]):
                self.obs.events["ended"] += 1
                return []
            del self.ended[iid]
        self.obs.events["applied"] += 1
        state = lifecycle.new_interaction()
        reached = lifecycle.merge(state, snap) or []
        if Stage.CREATED not in reached:
            reached.insert(0, Stage.CREATED)
        self._observe(state, reached)
        events: list[StallEvent] = []
        if len(self.states) >= self.limits.max_interactions:
            events += self._remove(next(iter(self.states)), "evicted", now)
        self.states[iid] = state
        state.seen = now
        self.stage_counts[state.stage] += 1
        return events + self._settle(iid, state, now, None)

    def _touch(self, iid: str, state: Interaction, now: float) -> None:
        """Mark ``state`` as just updated: newest in the TTL and eviction order."""
        state.seen = max(state.seen, now)
        del self.states[iid]
        self.states[iid] = state

    def _observe(self, state: Interaction, reached: list[Stage]) -> None:
        mode = mode_label(state.mode)
        for stage in reached:
            self.obs.transitions[LABELS[stage], mode] += 1
        for name, seconds in lifecycle.latencies(state, reached):
            self.obs.latencies.append((name, mode, seconds))

    def _running(self, iid: str) -> Stall | None:
        """The unfired stall running on ``iid`` now, if it is tracked (for the timers)."""
        state = self.states.get(iid)
        return None if state is None or iid in self.stalled else self.policy.stall(state)

    def _alert(self, iid: str, state: Interaction) -> _Alert:
        """The alert of ``iid`` now: the stall it fired, else the stall running, if any."""
        fired = self.stalled.get(iid)
        return fired if fired is not None else self.policy.stall(state)

    def _settle(self, iid: str, state: Interaction, now: float, before: _Alert) -> list[StallEvent]:
        """After a change: move the alert along the table, end the interaction or re-time it."""
        self.dirty.add(iid)
        reason = lifecycle.ending(state)
        after = None if reason is not None else self.policy.stall(state)
        events = self._change(iid, state, before, after, now, reason or "moved_on")
        if reason is not None:
            self._remember_end(iid, state.version, now)
            self._drop(iid, reason)
        elif after is not None and iid not in self.stalled:
            if after.due <= now:  # already due: time has passed it, the table's *due* row
                events.append(self._fire(iid, state, after, now))
            else:
                self._timers.set(iid, after.due)
                if len(self._timers) > 2 * len(self.states) + 1024:
                    self._rebuild_timers()
        return events

    def _change(
        self,
        iid: str,
        state: Interaction,
        before: _Alert,
        after: Stall | None,
        now: float,
        why: Resolution,
    ) -> list[StallEvent]:
        """The *changed* rows of the alert table: ``before`` the change, ``after`` it."""
        if isinstance(before, Fired):
            if before.stall.same(after):
                return []  # the same stall still runs: it stays fired, once
            del self.stalled[iid]
            return [alerting.resolve(iid, state, before, now, why)]
        if before is None:
            return []
        if after is None or after.due != before.due:
            self._timers.discard(iid, before.due)
        if before.same(after):
            return []
        events = alerting.interrupt(iid, state, before, now, why)
        if events:
            self.obs.firings[LABELS[before.stage]] += 1
        return events

    def _fire(self, iid: str, state: Interaction, stall: Stall, now: float) -> StallEvent:
        fired, event = alerting.fire(iid, state, stall, now)
        self.stalled[iid] = fired
        self.dirty.add(iid)
        self.obs.firings[LABELS[stall.stage]] += 1
        return event

    def _remove(self, iid: str, reason: Removal, now: float) -> list[StallEvent]:
        """Take ``iid`` out of the tracker; its alert is judged as the table says."""
        state = self.states[iid]
        events = self._change(iid, state, self._alert(iid, state), None, now, reason)
        self._drop(iid, reason)
        return events

    def _drop(self, iid: str, reason: Removal) -> None:
        state = self.states.pop(iid)
        self.dirty.add(iid)
        self.stage_counts[state.stage] -= 1
        self.obs.removals[reason] += 1

    def _remember_end(self, iid: str, version: float, now: float) -> None:
        self.ended.pop(iid, None)
        if len(self.ended) >= self.limits.max_interactions:
            del self.ended[next(iter(self.ended))]
        self.ended[iid] = (version, now)

    def _rebuild_timers(self) -> None:
        self._timers = timers = Timers()
        for iid in self.states:
            stall = self._running(iid)
            if stall is not None:
                timers.set(iid, stall.due)
