"""Watching a tracker's interactions for stalls: each one's alert, and its stall timer.

Functions of a :class:`~consumer.engine.tracker.Tracker`'s state, which it calls on itself:

* each stall's alert follows the table of :mod:`consumer.engine.alerting`: ``stalled``
  holds the fired stall of each stalled interaction, it fires once, and exactly one
  resolved event follows when the interaction moves on or leaves;
* stall timers sit in a :class:`~consumer.engine.timers.Timers` wheel; an entry is
  discarded when its stall changes or ends, re-checked when due (stale ones, of
  interactions that expired or were evicted, are dropped), and the wheel is rebuilt should
  stale entries ever outnumber live interactions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consumer.engine import alerting
from consumer.engine.alerting import Fired, Resolution, StallEvent
from consumer.engine.interaction import Interaction
from consumer.engine.observations import tally
from consumer.engine.stages import LABELS
from consumer.engine.stalls import Stall
from consumer.engine.timers import Timers

if TYPE_CHECKING:  # the tracker calls these on itself: only a type here
    from consumer.engine.tracker import Tracker

# the alert of one interaction before a change: fired, pending (a stall running), or none
Alert = Fired | Stall | None


def running(t: Tracker, iid: str) -> Stall | None:
    """The stall running on ``iid`` unfired, if it is tracked: the one its timer is for."""
    state = t.states.get(iid)
    return None if state is None or iid in t.stalled else t.policy.stall(state)


def alert_of(t: Tracker, iid: str, state: Interaction) -> Alert:
    """The alert of ``iid`` now: the stall it fired, else the stall running, if any."""
    fired = t.stalled.get(iid)
    return fired if fired is not None else t.policy.stall(state)


def change(
    t: Tracker,
    iid: str,
    state: Interaction,
    before: Alert,
    after: Stall | None,
    now: float,
    why: Resolution,
) -> list[StallEvent]:
    """The *changed* rows of the alert table: ``before`` the change, ``after`` it."""
    if isinstance(before, Fired):
        if before.stall.same(after):
            return []  # the same stall still runs: it stays fired, once
        del t.stalled[iid]
        return [alerting.resolve(iid, state, before, now, why)]
    if before is None:
        return []
    if after is None or after.due != before.due:
        t.wheel.discard(iid, before.due)
    if before.same(after):
        return []
    events = alerting.interrupt(iid, state, before, now, why)
    if events:
        tally(t.obs.firings, LABELS[before.stage])
    return events


def fire(t: Tracker, iid: str, state: Interaction, stall: Stall, now: float) -> StallEvent:
    """The *due* row of the alert table: ``stall`` fires, is held as fired, and is counted."""
    fired, event = alerting.fire(iid, state, stall, now)
    t.stalled[iid] = fired
    t.dirty.add(iid)
    tally(t.obs.firings, LABELS[stall.stage])
    return event


def rebuild_timers(t: Tracker) -> None:
    """A new wheel with a timer for each stall running now: the old one's entries are gone."""
    t.wheel = timers = Timers()
    for iid in t.states:
        stall = running(t, iid)
        if stall is not None:
            timers.set(iid, stall.due)
