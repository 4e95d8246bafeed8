"""Per-partition tracking: merge snapshots, keep stall timers, evict, count. Pure.

A :class:`Tracker` owns the interactions of one partition (or of one replay). It never
reads a clock: every call takes ``now``, the caller's notion of time (event time in a
replay or a backlog, the wall clock once caught up). Invariants:

* an interaction is in ``states`` from its first snapshot until it ends (tombstone,
  wrapped up and inactive, conversation over and inactive), idles past the TTL, or is
  evicted as the least recently updated when the cap is reached. Every removal is
  counted by reason in :class:`Observations`;
* an ended interaction is remembered (id and how far it got) for the TTL, so a late echo
  of it is ignored instead of resurrecting it; only a newer preview or call reopens it;
* a stall fires once: ``stalled`` holds the firing alert of each stalled interaction,
  and the same stall is never fired again while it is there. When the interaction moves
  on, or leaves the tracker for any reason, exactly one ``resolved`` alert follows;
* stall timers sit in a :class:`~consumer.engine.timers.Timers` wheel; an entry is discarded
  when its stall changes or ends, re-checked when due (stale ones, of interactions that
  expired or were evicted, are dropped), and the wheel is rebuilt should stale entries
  ever outnumber live interactions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from consumer.engine import lifecycle
from consumer.engine.lifecycle import LABELS, STAGES, Interaction, Snapshot, Stage, Tombstone
from consumer.engine.stalls import Alert, Resolution, Stall, StallPolicy, make_alert, resolve
from consumer.engine.timers import Timers

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

    events: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: list[tuple[str, str, float]] = field(default_factory=list)
    removals: Counter[str] = field(default_factory=Counter)
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
        self.stalled: dict[str, tuple[Alert, Stall]] = {}
        self.stage_counts = [0] * len(STAGES)
        # ids whose persisted form changed since the owner last took them (see changelog)
        self.dirty: set[str] = set()
        self._timers = Timers()

    def __len__(self) -> int:
        return len(self.states)

    # -- input ----------------------------------------------------------------------

    def apply(self, snap: Snapshot, now: float) -> list[Alert]:
        """Merge one snapshot observed at ``now``; return the alerts it fires or resolves."""
        iid = snap.interaction_id
        state = self.states.get(iid)
        if state is None:
            return self._first(snap, now)
        stage_before = state.stage
        pending = self._pending(iid, state)
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
        return self._settle(iid, state, now, pending)

    def ingest(self, item: Snapshot | Tombstone, now: float) -> list[Alert]:
        """Apply a snapshot or a tombstone observed at ``now``."""
        if isinstance(item, Tombstone):
            return self.end(item.interaction_id, now)
        return self.apply(item, now)

    def end(self, interaction_id: str, now: float) -> list[Alert]:
        """A tombstone: the producer deleted the interaction."""
        self.obs.events["tombstone"] += 1
        state = self.states.get(interaction_id)
        version = now if state is None else max(now, state.version)
        self._remember_end(interaction_id, version, now)
        if state is None:
            return []
        pending = self._pending(interaction_id, state)
        if pending is not None:
            self._timers.discard(interaction_id, pending.due)
        missed = (
            []
            if pending is None
            else self._missed(interaction_id, state, pending, now, "tombstone")
        )
        return missed + self._remove(interaction_id, "tombstone", now)

    def restore(self, saved: dict[str, tuple[Interaction, tuple[Alert, Stall] | None]]) -> None:
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

    def take_dirty(self) -> set[str]:
        """The ids changed since the last call; the caller persists them."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def tick(self, now: float) -> list[Alert]:
        """Advance to ``now``: fire the stalls that are due, expire idle interactions."""
        alerts = [
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
            alerts += self._remove(iid, "expired", now)
        forgotten = []
        for iid, (_, at) in self.ended.items():
            if at >= horizon:
                break
            forgotten.append(iid)
        for iid in forgotten:
            del self.ended[iid]
        return alerts

    # -- inside ---------------------------------------------------------------------

    def _first(self, snap: Snapshot, now: float) -> list[Alert]:
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
        alerts: list[Alert] = []
        if len(self.states) >= self.limits.max_interactions:
            alerts += self._remove(next(iter(self.states)), "evicted", now)
        self.states[iid] = state
        state.seen = now
        self.stage_counts[state.stage] += 1
        return alerts + self._settle(iid, state, now, None)

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
        return None if state is None else self._pending(iid, state)

    def _pending(self, iid: str, state: Interaction) -> Stall | None:
        """The stall running on ``state`` that has not fired (yet)."""
        return None if iid in self.stalled else self.policy.stall(state)

    def _settle(
        self, iid: str, state: Interaction, now: float, pending: Stall | None
    ) -> list[Alert]:
        """After a change: judge the stall it interrupted, end the interaction or re-time it.

        ``pending`` is the stall that was running, unfired, before the change.
        """
        self.dirty.add(iid)
        reason = lifecycle.ending(state)
        stall = None if reason is not None else self.policy.stall(state)
        if pending is not None and (stall is None or stall.due != pending.due):
            self._timers.discard(iid, pending.due)
        alerts: list[Alert] = []
        if pending is not None and not pending.same(stall):
            alerts += self._missed(iid, state, pending, now, reason or "moved_on")
        if reason is not None:
            self._remember_end(iid, state.version, now)
            return alerts + self._remove(iid, reason, now)
        firing = self.stalled.get(iid)
        if firing is not None:
            alert, fired = firing
            if fired.same(stall):
                return alerts  # still the same stall: it stays fired, once
            del self.stalled[iid]
            alerts.append(resolve(alert, fired, now, self._until(state, fired, now), "moved_on"))
        if stall is not None:
            self._timers.set(iid, stall.due)
            if len(self._timers) > 2 * len(self.states) + 1024:
                self._rebuild_timers()
        return alerts

    def _missed(
        self, iid: str, state: Interaction, stall: Stall, now: float, why: Resolution
    ) -> list[Alert]:
        """Judge a stall that a change interrupted before any tick saw it come due.

        If it came due before the interaction moved on, by the snapshots' own times, it
        did happen: it fires and resolves at once. If the move came in time, it is no
        stall, however late the news of the move arrived.
        """
        if stall.due > now:
            return []  # not due even now, so not by the time it stopped either
        until = self._until(state, stall, now)
        if stall.due > until:
            return []
        alert = self._fire(iid, state, stall, now)
        del self.stalled[iid]
        return [alert, resolve(alert, stall, now, until, why)]

    @staticmethod
    def _until(state: Interaction, stall: Stall, now: float) -> float:
        """When ``stall`` stopped: the first move the snapshots show, at the latest now."""
        moved = lifecycle.moved_since(state, stall.stage, stall.since)
        return now if moved is None else min(moved, now)

    def _fire(self, iid: str, state: Interaction, stall: Stall, now: float) -> Alert:
        alert = make_alert("firing", iid, state, stall, now)
        self.stalled[iid] = (alert, stall)
        self.dirty.add(iid)
        self.obs.firings[LABELS[stall.stage]] += 1
        return alert

    def _remove(self, iid: str, reason: Resolution, now: float) -> list[Alert]:
        state = self.states.pop(iid)
        self.dirty.add(iid)
        self.stage_counts[state.stage] -= 1
        self.obs.removals[reason] += 1
        firing = self.stalled.pop(iid, None)
        if firing is None:
            return []
        alert, stall = firing
        return [resolve(alert, stall, now, self._until(state, stall, now), reason)]

    def _remember_end(self, iid: str, version: float, now: float) -> None:
        self.ended.pop(iid, None)
        if len(self.ended) >= self.limits.max_interactions:
            del self.ended[next(iter(self.ended))]
        self.ended[iid] = (version, now)

    def _rebuild_timers(self) -> None:
        self._timers = timers = Timers()
        for iid, state in self.states.items():
            stall = self._pending(iid, state)
            if stall is not None:
                timers.set(iid, stall.due)
