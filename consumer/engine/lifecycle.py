"""The preview lifecycle: stages, merging snapshots, and when an interaction ends.

Pure functions over plain data; no I/O, no clock. The stages and how their times are held
are in :mod:`consumer.engine.stages`; the merged state is
:class:`~consumer.engine.interaction.Interaction`. The rules, in one place:

1. **Merge is a join.** A snapshot is the dialer's view at one moment. Each timestamp
   merges by ``max``; each descriptive attribute (campaign, agent, queue, dialing mode,
   the ``activePreviewCall`` flag) is last-writer-wins on the snapshot's *version* (its
   newest timestamp), ties broken by value. ``max`` over a total order is commutative,
   associative and idempotent, so duplicates and late snapshots never move an
   interaction backwards, and any order of the same snapshots gives the same state.
   That is what makes at-least-once replay safe. On a version tie the flag prefers
   "inactive": once the dialer closed a preview, only a newer snapshot reopens it.
2. **The stage is derived, never stored as truth.** A placement newer than the last
   wrap-up is a new call on the same interaction: its stage is the furthest of placed,
   routed, connected whose time belongs to it. Otherwise a wrap-up means wrapped_up,
   unless a preview popped after it (the next preview). Otherwise previewing if the
   preview popped, else created. Whether routing or connection comes first is not known
   for sure; the stage is the furthest reached, whichever order they came in.
3. **An interaction ends** when it is wrapped up and no preview call is active, or when
   the conversation of its current call has ended and no preview call is active (a
   tombstone ends it too; that is the tracker's business). An absent
   ``activePreviewCall`` counts as inactive: only ``true`` holds an interaction open.
4. **The list is an attribute like the others.** The API answers a campaign's
   interactions in five lists (:data:`~consumer.engine.lists.LISTS`); the poller names
   the list in each record's ``genesys.bucket`` header, which the snapshot itself does
   not carry. It merges as in rule 1, last-writer-wins on the snapshot's version, with
   one difference: on a version tie the list further along (``LISTS`` order) wins, not
   the larger name. Leaving ``scheduled`` for ``pending`` adds no time to a snapshot
   (the callback's time came, nothing else happened), so the tie must go forward; every
   later move (a pop, a placement) carries a newer time of its own. A record with no
   list (another producer, or a name this release does not know) never erases one, as
   an absent attribute never does. The one move the order gets wrong, back from
   ``pending`` to ``scheduled`` with no newer time, stays between the two lists in which
   no stall runs (:mod:`consumer.engine.stalls`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final, Literal

from consumer.engine.interaction import Interaction, lagging_versions, time_of
from consumer.engine.lists import NO_LIST
from consumer.engine.snapshot import Snapshot
from consumer.engine.stages import (
    CONNECTED,
    CREATED,
    PLACED,
    PREVIEWING,
    ROUTED,
    STAGES,
    UNKNOWN,
    WRAPPED_UP,
    Stage,
    or_none,
    or_unknown,
)

_intern: Final = sys.intern  # a module attribute looked up once, not on every call

Ending = Literal["wrapped_up", "conversation_ended"]


def _derive(popped: float, placed: float, routed: float, connected: float, wrapped: float) -> int:
    """Rule 2 on raw times (an unknown time compares false with everything)."""
    if placed > wrapped:  # placed, and newer than any wrap-up: the current call's stages
        if connected >= placed:
            return CONNECTED
        if routed >= placed:
            return ROUTED
        return PLACED
    if wrapped != UNKNOWN:
        return PREVIEWING if popped > wrapped else WRAPPED_UP
    return PREVIEWING if popped != UNKNOWN else CREATED


def derive_stage(times: Sequence[float | None]) -> Stage:
    """The stage a set of merged timestamps puts an interaction in (rule 2)."""
    return STAGES[
        _derive(
            or_unknown(times[PREVIEWING]),
            or_unknown(times[PLACED]),
            or_unknown(times[ROUTED]),
            or_unknown(times[CONNECTED]),
            or_unknown(times[WRAPPED_UP]),
        )
    ]


def restage(state: Interaction) -> None:
    """Derive ``state``'s stage from its times again (after they were set from outside)."""
    state.stage_number = _derive(
        state.at_previewing,
        state.at_placed,
        state.at_routed,
        state.at_connected,
        state.at_wrapped_up,
    )


def call_floor(state: Interaction) -> float:
    """The wrap-up that ended the previous call: the current call's times are all later."""
    return UNKNOWN if state.stage_number == WRAPPED_UP else state.at_wrapped_up


def belongs(state: Interaction, stage: int, floor: float) -> bool:
    """``stage``'s time is one of the current call's (or preview's)."""
    moment = time_of(state, stage)
    if moment == UNKNOWN or moment <= floor:
        return False
    if stage in (ROUTED, CONNECTED):  # only after the call's placement
        placed = state.at_placed
        return placed != UNKNOWN and moment >= placed
    return True


def new_interaction() -> Interaction:
    """An interaction nothing is known about yet; :func:`merge` fills it."""
    return Interaction()


def _wins(version: float, value: str, known: float, current: str | None) -> bool:
    """``(version, value)`` wins over ``(known, current)``: later, or on a tie the larger."""
    return current is None or version > known or (version == known and value > current)


def _keep(current: str | None, value: str) -> str:
    """One copy of each campaign, agent, queue and mode string, not one per state."""
    return current if current == value else _intern(value)


def merge(state: Interaction, snap: Snapshot) -> list[Stage] | None:
    """Merge ``snap`` into ``state`` in place (rule 1) and re-derive the stage.

    Returns ``None`` when the snapshot taught nothing new, else the stages the current
    call newly reached (entered, or re-entered by a new call), in order; possibly empty
    when only an attribute changed.
    """
    changed: list[int] = []
    moment = snap.at_created
    if moment > state.at_created:
        state.at_created = moment
        changed.append(CREATED)
    moment = snap.at_previewing
    if moment > state.at_previewing:
        state.at_previewing = moment
        changed.append(PREVIEWING)
    moment = snap.at_placed
    if moment > state.at_placed:
        state.at_placed = moment
        changed.append(PLACED)
    moment = snap.at_routed
    if moment > state.at_routed:
        state.at_routed = moment
        changed.append(ROUTED)
    moment = snap.at_connected
    if moment > state.at_connected:
        state.at_connected = moment
        changed.append(CONNECTED)
    moment = snap.at_wrapped_up
    if moment > state.at_wrapped_up:
        state.at_wrapped_up = moment
        changed.append(WRAPPED_UP)
    learned = bool(changed)
    if snap.at_ended > state.at_ended:
        state.at_ended = snap.at_ended
        learned = True

    version = snap.version
    base = state.closed_version
    lagging = state.lagging
    if lagging is None:  # every known attribute has the flag's version (the common case)
        v0 = v1 = v2 = v3 = v4 = base
    else:
        v0, v1, v2, v3, v4 = lagging
    attributes_changed = False
    value = snap.campaign_id
    if value is not None and _wins(version, value, v0, state.campaign):
        state.campaign = _keep(state.campaign, value)
        v0 = version
        attributes_changed = True
    value = snap.campaign_name
    if value is not None and _wins(version, value, v1, state.campaign_name):
        state.campaign_name = _keep(state.campaign_name, value)
        v1 = version
        attributes_changed = True
    value = snap.agent_id
    if value is not None and _wins(version, value, v2, state.agent):
        state.agent = _keep(state.agent, value)
        v2 = version
        attributes_changed = True
    value = snap.queue_id
    if value is not None and _wins(version, value, v3, state.queue):
        state.queue = _keep(state.queue, value)
        v3 = version
        attributes_changed = True
    value = snap.dialing_mode
    if value is not None and _wins(version, value, v4, state.mode):
        state.mode = _keep(state.mode, value)
        v4 = version
        attributes_changed = True
    closed = snap.active is not True
    current = state.closed
    if current is None or version > base or (version == base and closed > current):
        state.closed, state.closed_version, base = closed, version, version
        attributes_changed = True
    if attributes_changed:
        state.lagging = lagging_versions(state, (v0, v1, v2, v3, v4), base)
        learned = True
    number = snap.bucket
    if number != NO_LIST:  # rule 4: a record that names no list leaves the list alone
        known = state.bucket_version
        held = state.bucket
        if held == NO_LIST or version > known or (version == known and number > held):
            state.bucket, state.bucket_version = number, version
            learned = True
    if not learned:
        return None
    restage(state)
    stage = state.stage_number
    floor = call_floor(state)
    return [STAGES[s] for s in changed if s <= stage and belongs(state, s, floor)]


def conversation_over(state: Interaction) -> bool:
    """The conversation of the current call (or preview) has ended.

    A conversation that ended before the current call or preview began belongs to an
    earlier call on the same interaction and says nothing about this one.
    """
    ended = state.at_ended
    if ended == UNKNOWN:
        return False
    stage = state.stage_number
    began = time_of(state, PLACED if stage >= PLACED else stage)
    return began == UNKNOWN or ended >= began


def ending(state: Interaction) -> Ending | None:
    """Why the interaction is over (rule 3), or ``None`` while it is still open."""
    if state.closed is False:  # a preview call is live
        return None
    if state.stage_number == WRAPPED_UP:
        return "wrapped_up"
    if conversation_over(state):
        return "conversation_ended"
    return None


def moved_since(state: Interaction, stage: Stage, since: float) -> float | None:
    """The first moment after ``since`` at which the snapshots show a move from ``stage``.

    A move is another stage entered (or the same one re-entered), or the conversation
    ended. ``None`` when no time shows it moved. A closed preview is no evidence of when:
    a snapshot saying ``activePreviewCall`` false carries the time of its newest stage,
    not of the closing (an admin's "disconnect interactions" adds no time at all).
    """
    first = UNKNOWN
    own = int(stage)
    for s in range(len(STAGES)):
        moment = time_of(state, s)
        if moment == UNKNOWN:
            continue
        if (moment > since if s == own else moment >= since) and (
            first == UNKNOWN or moment < first
        ):
            first = moment
    ended = state.at_ended
    if ended != UNKNOWN and ended > since and (first == UNKNOWN or ended < first):
        first = ended
    return or_none(first)


def starts_new_call(snap: Snapshot, ended_version: float) -> bool:
    """A snapshot of an interaction that already ended reopens it: a newer preview or call.

    Anything else about an ended interaction is a late echo of what ended it.
    """
    return (
        snap.at_placed > ended_version
        or snap.at_previewing > ended_version
        or (snap.active is True and snap.version > ended_version)
    )
