"""Per-partition tracking: merge snapshots, keep stall timers, evict, count. Pure.

A :class:`Tracker` owns the interactions of one partition (or of one replay). It never
reads a clock: every call takes ``now``, the caller's notion of time (event time in a
replay or a backlog, the wall clock once caught up). Invariants:

* time passes before each record: :meth:`Tracker.ingest` first fires every stall due by
  the record's time, then applies the record, so a closing that shares a batch with a
  threshold still reports the stall (and resolves it with its real duration);
* an interaction is in ``states`` from its first snapshot until it ends (tombstone,
  wrapped up and inactive, conversation over and inactive), idles past the TTL, or is
  evicted as the least recently updated when the cap is reached, or shed when the
  process's :class:`Budget` is spent. Every removal is counted by reason in
  :class:`Observations`, and a stall due by then fires first;
* an interaction that ended by its lifecycle (wrapped up and inactive, conversation over)
  is remembered (id and how far it got) for the TTL, so a late echo of it is ignored
  instead of resurrecting it; only a newer preview or call reopens it. A tombstone is
  the producer's word, not the lifecycle's: it is remembered at the interaction's own
  last version, and a snapshot at or past that version reopens it (in offset order a
  snapshot after a tombstone of its key is a newer statement: the producer sees the
  interaction live again, as a poller does after a spurious tombstone);
* each stall's alert and timer are kept as :mod:`consumer.engine.watch` says.
"""

from __future__ import annotations

import math

from mypy_extensions import mypyc_attr

from consumer.engine import lifecycle, watch
from consumer.engine.alerting import Fired, Removal, StallEvent
from consumer.engine.interaction import Interaction
from consumer.engine.limits import Budget, Limits
from consumer.engine.observations import Observations, ShedReason, ShedStall, observe, tally
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.stages import STAGES, Stage
from consumer.engine.stalls import Stall, StallPolicy
from consumer.engine.timers import Timers
from consumer.engine.watch import Alert


# A compiled class is closed to Python subclasses unless it says otherwise; tests subclass
# it to make it fail. Such a class's methods are looked up as Python methods, so only the
# public ones are methods: the work is done by module functions, this module's below and
# those of consumer.engine.watch, called directly.
@mypyc_attr(allow_interpreted_subclasses=True)
class Tracker:
    """The interactions of one partition, their stages and their stalls."""

    def __init__(self, policy: StallPolicy, limits: Limits, observations: Observations) -> None:
        self.policy = policy
        self.limits = limits
        self.obs = observations
        # insertion order is least-recently-updated first: TTL and cap evict from the front
        self.states: dict[str, Interaction] = {}
        # id -> (version it ended at, tracker time it ended, ended by a tombstone), oldest first
        self.ended: dict[str, tuple[float, float, bool]] = {}
        self.stalled: dict[str, Fired] = {}
        self.stage_counts = [0] * len(STAGES)
        # ids whose persisted form changed since the owner last took them (see changelog)
        self.dirty: set[str] = set()
        self.wheel = Timers()
        self.budget = limits.budget
        # events not handed out yet, out with this tracker's next tick: resolutions of fired
        # stalls shed by another's intake (a record of another partition, a restore), and
        # what fell due before a record that failed to apply
        self.owed: list[StallEvent] = []
        # no interaction was seen, and none ended, before these (lower bounds): the TTL's
        # scans from the front start only once the horizon passes them. A dict that lost
        # its front (evictions, shedding) keeps the holes until it grows, and each look at
        # its first item walks them: per record, that was a flood's whole time.
        self.seen_from = -math.inf
        self.ended_from = -math.inf

    def __len__(self) -> int:
        return len(self.states)

    @property
    def timers(self) -> int:
        """Stall timers held, stale ones included (for the memory benchmark)."""
        return len(self.wheel)

    def ingest(self, item: Snapshot | Tombstone, now: float) -> list[StallEvent]:
        """Time passes to ``now``, then the record: what fell due fires, then ``item`` applies.

        If applying raises (a bug: the caller dead-letters the record), what fell due did
        fire all the same: its events are owed, out with the next tick, not lost.
        """
        events = _tick(self, now)
        try:
            if isinstance(item, Tombstone):
                events += _end(self, item.interaction_id, now)
            else:
                events += _apply(self, item, now)
        except BaseException:
            self.owed = events + self.owed
            raise
        return events

    def restore(self, saved: dict[str, tuple[Interaction, Fired | None]]) -> list[str]:
        """Take back interactions saved by a previous owner, with the stalls they had fired.

        Fired stalls stay fired (they are not raised again); unfired ones get timers, so a
        stall that came due while nobody owned the partition fires once, at the next tick.
        Returns the ids refused: an interaction whose times the tracker cannot order or
        time (``inf``, NaN) is left out, so that it cannot stop the others' restore.

        May be called several times (a restore in chunks): the interactions join in the
        order they were last seen, and past the budget the least recently seen of the
        process are shed as they come, so the newest win. A chunk with interactions seen
        before the newest held re-sorts the tracker: give chunks oldest first
        (:func:`restore_order`) and it never does.
        """
        kept: list[tuple[str, tuple[Interaction, Fired | None]]] = []
        refused: list[str] = []
        for iid, (state, fired) in saved.items():
            if _restorable(self, state, fired):
                kept.append((iid, (state, fired)))
            else:
                refused.append(iid)
        kept.sort(key=_seen)
        states = self.states
        if kept and states and kept[0][1][0].seen < states[next(reversed(states))].seen:
            # older than some held: take all back out and in again, in order
            held = [(iid, (state, self.stalled.get(iid))) for iid, state in states.items()]
            _forget_all(self)
            kept = sorted(held + kept, key=_seen)
        self.seen_from = -math.inf  # restored in any order of time: look afresh
        budget = self.budget
        for iid, (state, fired) in kept:
            old = states.pop(iid, None)
            if old is not None:  # in two chunks: the later one stands
                self.stage_counts[old.stage_number] -= 1
                self.stalled.pop(iid, None)
            elif budget is not None:
                budget.used += 1
            states[iid] = state
            self.stage_counts[state.stage_number] += 1
            if fired is not None:
                self.stalled[iid] = fired
            if budget is not None and budget.used > budget.interactions:
                _shed(budget, state.seen)
        wheel = self.wheel
        for iid, (state, fired) in kept:  # the timers of those still here
            if fired is None and iid in states:
                stall = self.policy.stall(state)
                if stall is not None:
                    wheel.set(iid, stall.due)
        return refused

    def retime(self) -> None:
        """Set every stall timer afresh: the policy's thresholds changed."""
        watch.rebuild_timers(self)

    def take_dirty(self) -> set[str]:
        """The ids changed since the last call; the caller persists them."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def tick(self, now: float) -> list[StallEvent]:
        """Advance to ``now``: fire the stalls that are due, expire idle interactions."""
        return _tick(self, now)

    def running(self, iid: str) -> Stall | None:
        """The unfired stall running on ``iid`` now, if it is tracked (for the timers)."""
        return watch.running(self, iid)


def _seen(item: tuple[str, tuple[Interaction, Fired | None]]) -> float:
    return item[1][0].seen


def restore_order(item: tuple[Interaction, Fired | None]) -> float:
    """The order a restore gives interactions in: least recently seen first."""
    return item[0].seen


def _restorable(t: Tracker, state: Interaction, fired: Fired | None) -> bool:
    """``state`` can be tracked: last seen, fired and coming due at moments the wheel holds."""
    if fired is not None:
        due = fired.at  # a fired stall has no timer; its firing time is shown and re-sent
    else:
        stall = t.policy.stall(state)
        due = state.seen if stall is None else stall.due
    return math.isfinite(state.seen) and math.isfinite(due)


def _tick(t: Tracker, now: float) -> list[StallEvent]:
    events: list[StallEvent] = []
    if t.owed:
        events, t.owed = t.owed, events
    if t.wheel.due(now):
        for iid, stall in t.wheel.pop_due(now, t.running):
            events.append(watch.fire(t, iid, t.states[iid], stall, now))
    horizon = now - t.limits.ttl_seconds
    if horizon > t.seen_from:
        idle = []
        t.seen_from = math.inf
        for iid, state in t.states.items():  # oldest first: stop at the first fresh one
            if state.seen >= horizon:
                t.seen_from = state.seen
                break
            idle.append(iid)
        for iid in idle:
            events += _remove(t, iid, "expired", now)
    if horizon > t.ended_from:
        forgotten = []
        t.ended_from = math.inf
        for iid, (_, at, _) in t.ended.items():
            if at >= horizon:
                t.ended_from = at
                break
            forgotten.append(iid)
        for iid in forgotten:
            del t.ended[iid]
    return events


def _apply(t: Tracker, snap: Snapshot, now: float) -> list[StallEvent]:
    iid = snap.interaction_id
    state = t.states.get(iid)
    if state is None:
        return _first(t, snap, now)
    stage_before = state.stage_number
    before = watch.alert_of(t, iid, state)
    reached = lifecycle.merge(state, snap)
    _touch(t, iid, state, now)
    if reached is None:
        tally(t.obs.events, "late" if snap.version < state.version else "duplicate")
        return []
    tally(t.obs.events, "applied")
    if state.stage_number != stage_before:
        t.stage_counts[stage_before] -= 1
        t.stage_counts[state.stage_number] += 1
    observe(t.obs, state, reached)
    return _settle(t, iid, state, now, before)


def _end(t: Tracker, interaction_id: str, now: float) -> list[StallEvent]:
    """A tombstone: the producer deleted the interaction.

    Remembered at the interaction's own version, so that only an older snapshot is an
    echo; one that ended by its lifecycle keeps that (stronger) memory. A tombstone of
    an id not tracked leaves nothing to protect.
    """
    tally(t.obs.events, "tombstone")
    state = t.states.get(interaction_id)
    if state is None:
        return []
    _remember_end(t, interaction_id, state.version, now, True)
    return _remove(t, interaction_id, "tombstone", now)


def _first(t: Tracker, snap: Snapshot, now: float) -> list[StallEvent]:
    iid = snap.interaction_id
    ended = t.ended.get(iid)
    if ended is not None:
        version, _, tombstoned = ended
        if tombstoned:
            reopens = snap.version >= version
        else:
            reopens = lifecycle.starts_new_call(snap, version)
        if not reopens:
            tally(t.obs.events, "ended")
            return []
        del t.ended[iid]
    tally(t.obs.events, "applied")
    state = lifecycle.new_interaction()
    reached = lifecycle.merge(state, snap) or []
    if Stage.CREATED not in reached:
        reached.insert(0, Stage.CREATED)
    observe(t.obs, state, reached)
    events: list[StallEvent] = []
    if len(t.states) >= t.limits.max_interactions:
        events += _evict(t, next(iter(t.states)), "cap", now)
    t.states[iid] = state
    state.seen = now
    if now < t.seen_from:
        t.seen_from = now
    t.stage_counts[state.stage_number] += 1
    budget = t.budget
    if budget is not None:
        budget.used += 1
    events += _settle(t, iid, state, now, None)
    if budget is not None and budget.used > budget.interactions:
        _shed(budget, now)  # after settling: the newcomer is the newest, never shed
    return events


def _touch(t: Tracker, iid: str, state: Interaction, now: float) -> None:
    """Mark ``state`` as just updated: newest in the TTL and eviction order."""
    state.seen = max(state.seen, now)
    del t.states[iid]
    t.states[iid] = state


def _settle(
    t: Tracker, iid: str, state: Interaction, now: float, before: Alert
) -> list[StallEvent]:
    """After a change: move the alert along the table, end the interaction or re-time it."""
    t.dirty.add(iid)
    reason = lifecycle.ending(state)
    after = None if reason is not None else t.policy.stall(state)
    events = watch.change(t, iid, state, before, after, now, reason or "moved_on")
    if reason is not None:
        _remember_end(t, iid, state.version, now, False)
        _drop(t, iid, reason)
    elif after is not None and iid not in t.stalled:
        if after.due <= now:  # already due: time has passed it, the table's *due* row
            events.append(watch.fire(t, iid, state, after, now))
        else:
            t.wheel.set(iid, after.due)
            if len(t.wheel) > 2 * len(t.states) + 1024:
                watch.rebuild_timers(t)
    return events


def _remove(t: Tracker, iid: str, reason: Removal, now: float) -> list[StallEvent]:
    """Take ``iid`` out of the tracker; its alert is judged as the table says."""
    state = t.states[iid]
    events = watch.change(t, iid, state, watch.alert_of(t, iid, state), None, now, reason)
    _drop(t, iid, reason)
    return events


def _evict(t: Tracker, iid: str, reason: ShedReason, now: float) -> list[StallEvent]:
    """Shed ``iid`` to make room: counted by why and by what its stall was."""
    stall: ShedStall = "fired" if iid in t.stalled else "none"
    if stall == "none" and t.policy.stall(t.states[iid]) is not None:
        stall = "pending"
    tally(t.obs.shed, (reason, stall))
    return _remove(t, iid, "evicted", now)


def _shed(budget: Budget, now: float) -> None:
    """Shed the process's least recently updated interactions until the budget holds.

    A hundredth of the budget more than needed goes at once: a look at a tracker's front
    walks the holes shedding left there, so it is taken once for many. A fired stall's
    resolution goes to its tracker's ``owed``, out with that tracker's next tick: it may
    track another partition than the one that took too much.
    """
    trackers = list(budget.trackers())
    budget.used = sum([len(t.states) for t in trackers])
    excess = budget.used - budget.interactions
    if excess <= 0:
        return
    excess += budget.interactions // 100
    fronts: list[tuple[float, str, Tracker]] = []
    for t in trackers:  # each one's least recently updated, then the oldest of them all
        for taken, (iid, state) in enumerate(t.states.items()):
            if taken == excess:
                break
            fronts.append((state.seen, iid, t))
    fronts.sort(key=_when)
    for _, iid, t in fronts[:excess]:
        t.owed += _evict(t, iid, "budget", now)


def _when(front: tuple[float, str, Tracker]) -> float:
    return front[0]


def _forget_all(t: Tracker) -> None:
    """Empty ``t`` of its interactions, uncounted (a restore puts them back in order)."""
    if t.budget is not None:
        t.budget.used -= len(t.states)
    t.states.clear()
    t.stalled.clear()
    t.stage_counts = [0] * len(STAGES)
    t.wheel = Timers()


def _drop(t: Tracker, iid: str, reason: Removal) -> None:
    state = t.states.pop(iid)
    if t.budget is not None:
        t.budget.used -= 1
    t.dirty.add(iid)
    t.stage_counts[state.stage_number] -= 1
    tally(t.obs.removals, reason)


def _remember_end(t: Tracker, iid: str, version: float, now: float, tombstoned: bool) -> None:
    t.ended.pop(iid, None)
    if len(t.ended) >= t.limits.max_interactions:
        del t.ended[next(iter(t.ended))]
    t.ended[iid] = (version, now, tombstoned)
    if now < t.ended_from:
        t.ended_from = now
