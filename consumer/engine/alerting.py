"""The life of one stall alert, written as a table. Pure: the clock is an argument.

A watched interaction has at most one stall rule running (:mod:`consumer.engine.stalls`).
The alert for it is in one of two states, and changes on three events:

* ``PENDING``: a rule runs and has not come due (the tracker holds a timer for it);
* ``FIRING``: it came due and fired (the tracker holds a :class:`Fired` for it).

=========  =========  ==============================================  =========  ==================
from       event      condition                                       to         emits
=========  =========  ==============================================  =========  ==================
PENDING    due        the clock passed ``since + threshold``           FIRING     firing
PENDING    changed    it is due by now, and came due before it ended   next       firing, resolved
PENDING    changed    otherwise                                        next       nothing
FIRING     changed    the same stall still runs (same rule and start)  FIRING     nothing
FIRING     changed    another stall runs, or none                      next       resolved
=========  =========  ==============================================  =========  ==================

*changed* is any snapshot that changes which stall runs, and the interaction leaving the
tracker (an ending, a tombstone, expiry, eviction); *next* is ``PENDING`` for the stall that
runs after the change, if one does. Every firing is followed by exactly one resolved event
for the same stall (the same alert id), and a stall fires at most once: a firing stall has
no timer, and as long as the same stall is derived again it stays firing.

When a stall ended (``until`` of its resolved event): the first move the snapshots show after
it began (another stage entered, its own stage entered again, the conversation's end), at
the latest the moment the change was observed. A closing that carries no newer time of its
own (``activePreviewCall`` false, an admin's "disconnect interactions"), a tombstone, an
expiry or an eviction only says the stall had ended by the time it was seen.

The tracker runs *due* before each record (time passes first), so *PENDING, changed, due by
now* arises only when a snapshot's own times run ahead of its record's timestamp, or when
the change ends the interaction in the same instant it came due.
"""

from __future__ import annotations

import typing
from typing import Final, Literal, final

from mypy_extensions import mypyc_attr

from consumer.engine import lifecycle
from consumer.engine.interaction import Interaction
from consumer.engine.stalls import Stall

Status = Literal["firing", "resolved"]
# Why an interaction left the tracker.
Removal = Literal["tombstone", "wrapped_up", "conversation_ended", "expired", "evicted"]
REMOVALS: Final[tuple[Removal, ...]] = typing.get_args(Removal)
# Why a stall stopped: the interaction moved on, or why it left the tracker.
Resolution = Literal["moved_on", Removal]


@final
@mypyc_attr(acyclic=True)
class Fired:
    """A stall that fired, and when (the partition clock): what a ``FIRING`` alert holds."""

    def __init__(self, stall: Stall, at: float) -> None:
        self.stall = stall
        self.at = at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fired) and (self.stall, self.at) == (other.stall, other.at)

    def __repr__(self) -> str:
        return f"Fired({self.stall!r}, {self.at!r})"


_EVENT_FIELDS: Final = (
    "status",
    "interaction_id",
    "stall",
    "fired_at",
    "observed_at",
    "campaign",
    "campaign_name",
    "agent",
    "queue",
    "mode",
    "until",
    "resolution",
)


@final
@mypyc_attr(acyclic=True)
class StallEvent:
    """A stall firing or resolved: plain values, formatted for the outside at the edge.

    The interaction's attributes are copied as they were when the event happened.
    """

    def __init__(
        self,
        status: Status,
        interaction_id: str,
        stall: Stall,
        fired_at: float,
        observed_at: float,
        campaign: str | None,
        campaign_name: str | None,
        agent: str | None,
        queue: str | None,
        mode: str | None,
        until: float | None = None,
        resolution: Resolution | None = None,
    ) -> None:
        self.status: Status = status
        self.interaction_id = interaction_id
        self.stall = stall
        self.fired_at = fired_at  # when the stall fired
        self.observed_at = observed_at  # the partition clock when this event happened
        self.campaign = campaign
        self.campaign_name = campaign_name
        self.agent = agent
        self.queue = queue
        self.mode = mode
        self.until = until  # resolved: when the stall ended
        self.resolution: Resolution | None = resolution

    @property
    def stalled_for(self) -> float:
        """Firing: how long so far; resolved: how long the stall lasted."""
        end = self.observed_at if self.until is None else self.until
        return max(0.0, end - self.stall.since)

    def _fields(self) -> tuple[object, ...]:
        return (
            self.status,
            self.interaction_id,
            self.stall,
            self.fired_at,
            self.observed_at,
            self.campaign,
            self.campaign_name,
            self.agent,
            self.queue,
            self.mode,
            self.until,
            self.resolution,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StallEvent) and self._fields() == other._fields()

    def __repr__(self) -> str:
        pairs = zip(_EVENT_FIELDS, self._fields(), strict=True)
        return "StallEvent(" + ", ".join(f"{n}={v!r}" for n, v in pairs) + ")"


def ended_at(state: Interaction, stall: Stall, now: float) -> float:
    """When ``stall`` stopped: the first move the snapshots show after it began, at most now."""
    moved = lifecycle.moved_since(state, stall.stage, stall.since)
    return now if moved is None or moved > now else moved


def _event(
    status: Status,
    iid: str,
    state: Interaction,
    fired: Fired,
    now: float,
    until: float | None = None,
    why: Resolution | None = None,
) -> StallEvent:
    return StallEvent(
        status,
        iid,
        fired.stall,
        fired.at,
        now,
        state.campaign,
        state.campaign_name,
        state.agent,
        state.queue,
        state.mode,
        until,
        why,
    )


def fire(iid: str, state: Interaction, stall: Stall, now: float) -> tuple[Fired, StallEvent]:
    """Row *PENDING, due*: the stall fires now."""
    fired = Fired(stall, now)
    return fired, _event("firing", iid, state, fired, now)


def firing(iid: str, state: Interaction, fired: Fired) -> StallEvent:
    """The firing event of a stall that fired, as it was raised (for listings of stalls)."""
    return _event("firing", iid, state, fired, fired.at)


def resolve(iid: str, state: Interaction, fired: Fired, now: float, why: Resolution) -> StallEvent:
    """Row *FIRING, changed* to another stall or none: the resolved twin of the firing."""
    return _event("resolved", iid, state, fired, now, ended_at(state, fired.stall, now), why)


def interrupt(
    iid: str, state: Interaction, pending: Stall, now: float, why: Resolution
) -> list[StallEvent]:
    """Rows *PENDING, changed*: a stall that stopped before any tick saw it come due.

    If it was due by now and came due before it ended, by the snapshots' own times, it did
    happen: it fires and resolves at once. Otherwise it never was a stall.
    """
    due = pending.due
    if due > now:
        return []  # not due even now, so not by the time it stopped either
    until = ended_at(state, pending, now)
    if due > until:
        return []
    fired, firing = fire(iid, state, pending, now)
    return [firing, _event("resolved", iid, state, fired, now, until, why)]
