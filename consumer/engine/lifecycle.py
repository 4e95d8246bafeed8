"""The preview lifecycle: stages, merging snapshots, and when an interaction ends.

Pure functions over plain data; no I/O, no clock. The rules, in one place:

Stages, in order::

    created -> previewing -> placed -> routed -> connected -> wrapped_up
    (creationTime) (previewPopDeliveredTime) (callPlacedTime) (callRoutedTime)
                                  (previewConnectedTime) (lastActivePreviewWrapupTime)

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
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Final, Literal, TypeVar

import msgspec


class Stage(IntEnum):
    """Lifecycle stages, ordered; the value indexes the ``times`` of a snapshot."""

    CREATED = 0
    PREVIEWING = 1
    PLACED = 2
    ROUTED = 3
    CONNECTED = 4
    WRAPPED_UP = 5

    @property
    def label(self) -> str:
        """The stage's name in metrics, alerts and configuration."""
        return LABELS[self]


STAGES: Final = tuple(Stage)
# each stage's label, indexed by stage: the hot path reads it without Enum machinery
LABELS: Final = tuple(stage.name.lower() for stage in STAGES)

# A call's own stages: their times only count when they follow the call's placement.
_AFTER_PLACEMENT: Final = (Stage.ROUTED, Stage.CONNECTED)

# Latency histograms: (name, from stage, to stage), observed when "to" is reached.
LATENCIES: Final = (
    ("created_to_previewing", Stage.CREATED, Stage.PREVIEWING),
    ("created_to_placed", Stage.CREATED, Stage.PLACED),
    ("previewing_to_placed", Stage.PREVIEWING, Stage.PLACED),
    ("placed_to_routed", Stage.PLACED, Stage.ROUTED),
    ("placed_to_connected", Stage.PLACED, Stage.CONNECTED),
    ("connected_to_wrapped_up", Stage.CONNECTED, Stage.WRAPPED_UP),
)

# the latencies each stage completes: (name, from stage), in the order of LATENCIES
_LATENCIES_TO: Final = {
    stage: [(name, start) for name, start, end in LATENCIES if end is stage] for stage in STAGES
}

Ending = Literal["wrapped_up", "conversation_ended"]


def _newest(times: Sequence[float | None], conversation_ended: float | None) -> float:
    newest = conversation_ended or 0.0
    for moment in times:
        if moment is not None and moment > newest:
            newest = moment
    return newest


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """What the engine uses of one decoded snapshot; times in epoch seconds, no personal data.

    ``times`` is indexed by :class:`Stage`.
    """

    interaction_id: str
    campaign_id: str | None = None
    campaign_name: str | None = None
    agent_id: str | None = None
    queue_id: str | None = None
    dialing_mode: str | None = None
    active: bool | None = None
    times: tuple[float | None, ...] = (None,) * len(STAGES)
    conversation_ended: float | None = None

    @property
    def version(self) -> float:
        """The newest moment this snapshot speaks of; 0 when it has no time at all."""
        return _newest(self.times, self.conversation_ended)


class Tombstone(msgspec.Struct, frozen=True, gc=False):
    """A record with a key and a null value: the producer deleted the interaction."""

    interaction_id: str


class Interaction(msgspec.Struct, gc=False):
    """The merged state of one interaction: only what the rules above need.

    Nothing here is a container: the time each stage was entered is a field of its own,
    named after the stage, and each last-writer-wins attribute is two fields, its value
    and the version (snapshot time) that wrote it. A million interactions then hold no
    objects the garbage collector tracks; a tuple replaced on every merge would fill its
    youngest generation faster than collections empty it, and every collection would
    walk them. ``closed`` is ``True`` when ``activePreviewCall`` was false or absent, so
    that on a version tie closed wins (``True > False``); ``None`` until a snapshot said
    either.
    """

    created: float | None = None
    previewing: float | None = None
    placed: float | None = None
    routed: float | None = None
    connected: float | None = None
    wrapped_up: float | None = None
    conversation_ended: float | None = None
    closed: bool | None = None
    closed_version: float = 0.0
    # campaign id and name, agent id, queue id, dialing mode (lowercase), each with the
    # version that wrote it
    campaign: str | None = None
    campaign_version: float = 0.0
    campaign_name: str | None = None
    campaign_name_version: float = 0.0
    agent: str | None = None
    agent_version: float = 0.0
    queue: str | None = None
    queue_version: float = 0.0
    mode: str | None = None
    mode_version: float = 0.0
    stage: Stage = Stage.CREATED
    # Bookkeeping owned by the tracker: tracker-clock time of the last snapshot (for TTL).
    seen: float = 0.0

    @property
    def times(self) -> tuple[float | None, ...]:
        """When each stage was entered, indexed by :class:`Stage` (a new tuple each time)."""
        return _stage_times(self)

    @property
    def active(self) -> bool:
        """A preview call is known to be live on this interaction."""
        return self.closed is False

    @property
    def version(self) -> float:
        """The newest moment the merged state speaks of."""
        return _newest(self.times, self.conversation_ended)


_stage_times: Final = operator.attrgetter(*LABELS)

# merged attribute of Interaction (and the field of its version) <- attribute of Snapshot
_ATTRIBUTES: Final = tuple(
    (name, name + "_version") for name in ("campaign", "campaign_name", "agent", "queue", "mode")
)
_snapshot_attributes: Final = operator.attrgetter(
    "campaign_id", "campaign_name", "agent_id", "queue_id", "dialing_mode"
)


_Value = TypeVar("_Value", str, bool)


def _newer(version: float, value: _Value, known: float, current: _Value) -> bool:
    """``(version, value)`` wins over ``(known, current)``: later, or on a tie the larger."""
    return version > known or (version == known and value > current)


def derive_stage(times: Sequence[float | None]) -> Stage:
    """The stage a set of merged timestamps puts an interaction in (rule 2)."""
    wrapped = times[Stage.WRAPPED_UP]
    placed = times[Stage.PLACED]
    if placed is not None and (wrapped is None or placed > wrapped):
        for stage in (Stage.CONNECTED, Stage.ROUTED):
            moment = times[stage]
            if moment is not None and moment >= placed:
                return stage
        return Stage.PLACED
    popped = times[Stage.PREVIEWING]
    if wrapped is not None:
        return Stage.PREVIEWING if popped is not None and popped > wrapped else Stage.WRAPPED_UP
    return Stage.PREVIEWING if popped is not None else Stage.CREATED


def _call_floor(times: Sequence[float | None], stage: Stage) -> float | None:
    """The wrap-up that ended the previous call: the current call's times are all later."""
    return None if stage is Stage.WRAPPED_UP else times[Stage.WRAPPED_UP]


def _belongs(times: Sequence[float | None], stage: Stage, floor: float | None) -> bool:
    moment = times[stage]
    if moment is None or (floor is not None and moment <= floor):
        return False
    if stage in _AFTER_PLACEMENT:
        placed = times[Stage.PLACED]
        return placed is not None and moment >= placed
    return True


def new_interaction() -> Interaction:
    """An interaction nothing is known about yet; :func:`merge` fills it."""
    return Interaction()


def merge(state: Interaction, snap: Snapshot) -> list[Stage] | None:
    """Merge ``snap`` into ``state`` in place (rule 1) and re-derive the stage.

    Returns ``None`` when the snapshot taught nothing new, else the stages the current
    call newly reached (entered, or re-entered by a new call), in order; possibly empty
    when only an attribute changed.
    """
    moments = snap.times
    changed = [
        stage
        for stage, moment, current in zip(STAGES, moments, _stage_times(state), strict=True)
        if moment is not None and (current is None or moment > current)
    ]
    for stage in changed:
        setattr(state, LABELS[stage], moments[stage])
    learned = bool(changed)
    ended = snap.conversation_ended
    if ended is not None and (state.conversation_ended is None or ended > state.conversation_ended):
        state.conversation_ended = ended
        learned = True
    version = snap.version
    for (attribute, at_version), value in zip(_ATTRIBUTES, _snapshot_attributes(snap), strict=True):
        if value is None:
            continue
        current = getattr(state, attribute)
        # _newer, inlined: five times for every record
        known = getattr(state, at_version)
        if current is None or version > known or (version == known and value > current):
            # one copy of each campaign, agent, queue and mode string, not one per state
            setattr(state, attribute, current if current == value else sys.intern(value))
            setattr(state, at_version, version)
            learned = True
    closed = snap.active is not True
    if state.closed is None or _newer(version, closed, state.closed_version, state.closed):
        state.closed, state.closed_version, learned = closed, version, True
    if not learned:
        return None
    times = _stage_times(state)
    stage = state.stage = derive_stage(times)
    floor = _call_floor(times, stage)
    return [s for s in changed if s <= stage and _belongs(times, s, floor)]


def latencies(state: Interaction, reached: list[Stage]) -> list[tuple[str, float]]:
    """Stage-to-stage durations of the current call completed by the stages just reached."""
    if not reached:
        return []
    times = state.times
    floor = _call_floor(times, state.stage)
    observed = []
    for end in reached:
        for name, start in _LATENCIES_TO[end]:
            if _belongs(times, start, floor):
                began, finished = times[start], times[end]
                if began is not None and finished is not None and began <= finished:
                    observed.append((name, finished - began))
    return observed


def conversation_over(state: Interaction) -> bool:
    """The conversation of the current call (or preview) has ended.

    A conversation that ended before the current call or preview began belongs to an
    earlier call on the same interaction and says nothing about this one.
    """
    ended = state.conversation_ended
    if ended is None:
        return False
    stage = state.stage
    began: float | None = getattr(state, LABELS[Stage.PLACED if stage >= Stage.PLACED else stage])
    return began is None or ended >= began


def ending(state: Interaction) -> Ending | None:
    """Why the interaction is over (rule 3), or ``None`` while it is still open."""
    if state.active:
        return None
    if state.stage is Stage.WRAPPED_UP:
        return "wrapped_up"
    if conversation_over(state):
        return "conversation_ended"
    return None


def entered_at(state: Interaction) -> float | None:
    """When the interaction entered its current stage, from the snapshots' own times."""
    entered: float | None = getattr(state, LABELS[state.stage])
    return entered


def moved_since(state: Interaction, stage: Stage, since: float) -> float | None:
    """The first moment after ``since`` at which the snapshots show a move from ``stage``.

    A move is another stage entered (or the same one re-entered), or the conversation
    ended. ``None`` when no time shows it moved. A closed preview is no evidence of when:
    a snapshot saying ``activePreviewCall`` false carries the time of its newest stage,
    not of the closing (an admin's "disconnect interactions" adds no time at all).
    """
    moments = [
        moment
        for s, moment in zip(STAGES, state.times, strict=True)
        if moment is not None and (moment > since if s is stage else moment >= since)
    ]
    if state.conversation_ended is not None and state.conversation_ended > since:
        moments.append(state.conversation_ended)
    return min(moments, default=None)


def starts_new_call(snap: Snapshot, ended_version: float) -> bool:
    """A snapshot of an interaction that already ended reopens it: a newer preview or call.

    Anything else about an ended interaction is a late echo of what ended it.
    """
    placed, popped = snap.times[Stage.PLACED], snap.times[Stage.PREVIEWING]
    return (
        (placed is not None and placed > ended_version)
        or (popped is not None and popped > ended_version)
        or (snap.active is True and snap.version > ended_version)
    )
