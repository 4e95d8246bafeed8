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
4. **The list is an attribute like the others.** The API answers a campaign's
   interactions in five lists (:data:`LISTS`); the poller names the list in each record's
   ``genesys.bucket`` header, which the snapshot itself does not carry. It merges as in
   rule 1, last-writer-wins on the snapshot's version, with one difference: on a version
   tie the list further along (:data:`LISTS` order) wins, not the larger name. Leaving
   ``scheduled`` for ``pending`` adds no time to a snapshot (the callback's time came,
   nothing else happened), so the tie must go forward; every later move (a pop, a
   placement) carries a newer time of its own. A record with no list (another producer,
   or a name this release does not know) never erases one, as an absent attribute never
   does. The one move the order gets wrong, back from ``pending`` to ``scheduled`` with
   no newer time, stays between the two lists in which no stall runs
   (:mod:`consumer.engine.stalls`).

How it is stored: this module is compiled by mypyc (``setup.py``), and its classes are
native ones whose times are plain C doubles, not float objects. A time no snapshot gave
is :data:`UNKNOWN`, minus infinity, below every real time: merging a time is then ``max``
alone, and a comparison with an unknown time is simply false. The ``at_*`` fields hold
that form; the public properties (``created``, ``times``, ``conversation_ended``...) say
``None`` instead, as the rest of the code and the tests expect.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Final, Literal, final

import msgspec
from mypy_extensions import mypyc_attr


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

# The stages as plain ints: compiled code compares these natively, an IntEnum it cannot.
CREATED: Final = 0
PREVIEWING: Final = 1
PLACED: Final = 2
ROUTED: Final = 3
CONNECTED: Final = 4
WRAPPED_UP: Final = 5

UNKNOWN: Final = float("-inf")  # a time no snapshot gave: below every real one

# The API's five lists (rule 4), in the order an interaction passes through them, numbered
# from 1 in that order: a callback waits in scheduled until its time, then pending for a
# free agent, then previewing, proceeding (dialing) and interacting (connected).
LISTS: Final = ("scheduled", "pending", "previewing", "proceeding", "interacting")
NO_LIST: Final = 0  # the record named no list this release knows
SCHEDULED: Final = 1
PENDING: Final = 2
# the header carries bytes, a kcat -J dump text: both spellings of each name
_LIST_NUMBERS: Final[dict[str | bytes, int]] = {
    **{name: number for number, name in enumerate(LISTS, start=1)},
    **{name.encode(): number for number, name in enumerate(LISTS, start=1)},
}


def list_number(name: str | bytes) -> int:
    """The number of the list ``name`` (a ``genesys.bucket`` value); :data:`NO_LIST` if unknown."""
    return _LIST_NUMBERS.get(name, NO_LIST)


def list_name(number: int) -> str | None:
    """The name of list ``number``; ``None`` for :data:`NO_LIST`."""
    return LISTS[number - 1] if number != NO_LIST else None


_intern: Final = sys.intern  # a module attribute looked up once, not on every call

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
_LATENCIES_TO: Final = tuple(
    [(name, int(start)) for name, start, end in LATENCIES if end is stage] for stage in STAGES
)

Ending = Literal["wrapped_up", "conversation_ended"]


def _known(moment: float | None) -> float:
    return UNKNOWN if moment is None else moment


def _optional(moment: float) -> float | None:
    return None if moment == UNKNOWN else moment


def _newest(a: float, b: float, c: float, d: float, e: float, f: float, ended: float) -> float:
    """The newest of the six stage times and the conversation's end: a version; 0 if none."""
    newest = 0.0 if ended == UNKNOWN else ended
    # straight-line: compiled, these are C doubles, and a loop would box them into a tuple
    if a > newest:
        newest = a
    if b > newest:
        newest = b
    if c > newest:
        newest = c
    if d > newest:
        newest = d
    if e > newest:
        newest = e
    if f > newest:
        newest = f
    return newest


_NO_TIMES: Final[tuple[float | None, ...]] = (None,) * len(STAGES)
_SNAPSHOT_FIELDS: Final = (
    "interaction_id",
    "campaign_id",
    "campaign_name",
    "agent_id",
    "queue_id",
    "dialing_mode",
    "active",
    "times",
    "conversation_ended",
    "bucket",
)


@final
@mypyc_attr(acyclic=True)  # holds strings and floats only: no garbage collector pass needed
class Snapshot:
    """What the engine uses of one decoded snapshot; times in epoch seconds, no personal data.

    ``times`` is indexed by :class:`Stage`; ``bucket`` is the number of the list the record
    came from (:func:`list_number`), :data:`NO_LIST` when it named none.
    """

    def __init__(
        self,
        interaction_id: str,
        campaign_id: str | None = None,
        campaign_name: str | None = None,
        agent_id: str | None = None,
        queue_id: str | None = None,
        dialing_mode: str | None = None,
        active: bool | None = None,
        times: tuple[float | None, ...] = _NO_TIMES,
        conversation_ended: float | None = None,
        bucket: int = NO_LIST,
    ) -> None:
        self.interaction_id = interaction_id
        self.campaign_id = campaign_id
        self.campaign_name = campaign_name
        self.agent_id = agent_id
        self.queue_id = queue_id
        self.dialing_mode = dialing_mode
        self.active = active
        self.at_created = _known(times[CREATED])
        self.at_previewing = _known(times[PREVIEWING])
        self.at_placed = _known(times[PLACED])
        self.at_routed = _known(times[ROUTED])
        self.at_connected = _known(times[CONNECTED])
        self.at_wrapped_up = _known(times[WRAPPED_UP])
        self.at_ended = _known(conversation_ended)
        self.bucket = bucket
        # the newest moment this snapshot speaks of; 0 when it has no time at all
        self.version = _newest(
            self.at_created,
            self.at_previewing,
            self.at_placed,
            self.at_routed,
            self.at_connected,
            self.at_wrapped_up,
            self.at_ended,
        )

    @property
    def times(self) -> tuple[float | None, ...]:
        """When each stage was entered, indexed by :class:`Stage`."""
        return (
            _optional(self.at_created),
            _optional(self.at_previewing),
            _optional(self.at_placed),
            _optional(self.at_routed),
            _optional(self.at_connected),
            _optional(self.at_wrapped_up),
        )

    @property
    def conversation_ended(self) -> float | None:
        """When the conversation of the call ended, if it did."""
        return _optional(self.at_ended)

    def _fields(self) -> tuple[object, ...]:
        return (
            self.interaction_id,
            self.campaign_id,
            self.campaign_name,
            self.agent_id,
            self.queue_id,
            self.dialing_mode,
            self.active,
            self.times,
            self.conversation_ended,
            self.bucket,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self._fields() == other._fields()

    def __repr__(self) -> str:
        pairs = zip(_SNAPSHOT_FIELDS, self._fields(), strict=True)
        return "Snapshot(" + ", ".join(f"{n}={v!r}" for n, v in pairs) + ")"


@final
@mypyc_attr(acyclic=True)
class Tombstone:
    """A record with a key and a null value: the producer deleted the interaction."""

    def __init__(self, interaction_id: str) -> None:
        self.interaction_id = interaction_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tombstone) and self.interaction_id == other.interaction_id

    def __repr__(self) -> str:
        return f"Tombstone({self.interaction_id!r})"


# a version for each last-writer-wins attribute: campaign, campaign name, agent, queue, mode
Versions = tuple[float, float, float, float, float]


@final
@mypyc_attr(acyclic=True)  # a million of them must cost the garbage collector nothing
class Interaction:
    """The merged state of one interaction: only what the rules above need.

    Compiled, a native class of C doubles and string references, 176 bytes, that no
    garbage collector pass visits; uncompiled, the same fields as an untracked msgspec
    struct (:func:`_untracked`). ``closed`` is ``True`` when ``activePreviewCall`` was
    false or absent, so that on a version tie closed wins (``True > False``); ``None``
    until a snapshot said either.

    Versions: each last-writer-wins attribute was written by some snapshot, whose version
    decides the next contest. The flag is carried by every snapshot, so its version,
    ``closed_version``, is the newest any snapshot had; an attribute a snapshot carries
    gets the same one. Only when the newest snapshots left an attribute out do their
    versions differ, and only then does ``lagging`` hold the five versions (see
    :data:`Versions`; 0 for an attribute not known): otherwise it is ``None`` and each
    known attribute's version is ``closed_version``. Five floats saved per interaction.

    The fields are declared with their defaults, and there is no ``__init__``, so that
    :func:`_untracked` can make the struct from the declaration.
    """

    at_created: float = UNKNOWN
    at_previewing: float = UNKNOWN
    at_placed: float = UNKNOWN
    at_routed: float = UNKNOWN
    at_connected: float = UNKNOWN
    at_wrapped_up: float = UNKNOWN
    at_ended: float = UNKNOWN  # the conversation's end
    closed: bool | None = None
    closed_version: float = 0.0
    # campaign id and name, agent id, queue id, dialing mode (lowercase)
    campaign: str | None = None
    campaign_name: str | None = None
    agent: str | None = None
    queue: str | None = None
    mode: str | None = None
    lagging: Versions | None = None
    # the list it was last seen in (rule 4; NO_LIST when no record named one), and the
    # version of the snapshot that said so
    bucket: int = NO_LIST
    bucket_version: float = 0.0
    stage_number: int = CREATED  # derived from the times (rule 2)
    # Bookkeeping owned by the tracker: tracker-clock time of the last snapshot (for TTL).
    seen: float = 0.0

    # -- the public view: None for what is not known -----------------------------------

    @property
    def created(self) -> float | None:
        """When the interaction was created."""
        return _optional(self.at_created)

    @property
    def previewing(self) -> float | None:
        """When the preview popped."""
        return _optional(self.at_previewing)

    @property
    def placed(self) -> float | None:
        """When the call was placed."""
        return _optional(self.at_placed)

    @property
    def routed(self) -> float | None:
        """When the call was routed to the agent."""
        return _optional(self.at_routed)

    @property
    def connected(self) -> float | None:
        """When the customer was connected."""
        return _optional(self.at_connected)

    @property
    def wrapped_up(self) -> float | None:
        """When the agent last wrapped up."""
        return _optional(self.at_wrapped_up)

    @property
    def conversation_ended(self) -> float | None:
        """When the conversation of the latest call ended, if it did."""
        return _optional(self.at_ended)

    @property
    def times(self) -> tuple[float | None, ...]:
        """When each stage was entered, indexed by :class:`Stage` (a new tuple each time)."""
        return (
            self.created,
            self.previewing,
            self.placed,
            self.routed,
            self.connected,
            self.wrapped_up,
        )

    @property
    def stage(self) -> Stage:
        """The stage the times put the interaction in."""
        return STAGES[self.stage_number]

    @property
    def active(self) -> bool:
        """A preview call is known to be live on this interaction."""
        return self.closed is False

    @property
    def version(self) -> float:
        """The newest moment the merged state speaks of."""
        return _newest(
            self.at_created,
            self.at_previewing,
            self.at_placed,
            self.at_routed,
            self.at_connected,
            self.at_wrapped_up,
            self.at_ended,
        )

    def versions(self) -> Versions:
        """The version that wrote each attribute (see :data:`Versions`)."""
        lagging = self.lagging
        if lagging is not None:
            return lagging
        v = self.closed_version
        return (
            0.0 if self.campaign is None else v,
            0.0 if self.campaign_name is None else v,
            0.0 if self.agent is None else v,
            0.0 if self.queue is None else v,
            0.0 if self.mode is None else v,
        )

    def _fields(self) -> tuple[object, ...]:
        return (
            self.at_created,
            self.at_previewing,
            self.at_placed,
            self.at_routed,
            self.at_connected,
            self.at_wrapped_up,
            self.at_ended,
            self.closed,
            self.closed_version,
            self.campaign,
            self.campaign_name,
            self.agent,
            self.queue,
            self.mode,
            self.lagging,
            self.bucket,
            self.bucket_version,
            self.stage_number,
            self.seen,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interaction) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return (
            f"Interaction(times={self.times!r}, conversation_ended={self.conversation_ended!r}, "
            f"closed={self.closed!r}, closed_version={self.closed_version!r}, "
            f"attributes={self.campaign, self.campaign_name, self.agent, self.queue, self.mode!r}, "
            f"versions={self.versions()!r}, list={list_name(self.bucket)!r}, "
            f"bucket_version={self.bucket_version!r}, stage={self.stage.label}, seen={self.seen!r})"
        )


# what a class statement adds to a class's namespace besides its own fields and methods
_CLASS_INTERNALS: Final = frozenset(
    {"__annotations__", "__dict__", "__module__", "__qualname__", "__weakref__"}
)


def _untracked(cls: type) -> type:
    """``cls`` as a msgspec struct that the garbage collector does not track.

    For the uncompiled engine only: instances of an ordinary class are objects the
    collector tracks, and with a million interactions each full collection took half a
    second. A struct without GC support holds the same fields, defaults and methods, and
    costs the collector nothing, as the native class does compiled.
    """
    fields = [(name, object, vars(cls)[name]) for name in cls.__annotations__]
    methods = {
        name: value
        for name, value in vars(cls).items()
        if name not in cls.__annotations__ and name not in _CLASS_INTERNALS
    }
    return msgspec.defstruct(
        cls.__name__, fields, namespace=methods, module=cls.__module__, gc=False
    )


if __file__.endswith(".py"):  # not compiled: see _untracked; compiled code never sees this
    globals()["Interaction"] = _untracked(Interaction)


def pending_by_campaign(states: dict[str, Interaction], counts: dict[str | None, int]) -> None:
    """Add to ``counts`` the interactions of ``states`` in the pending list, by campaign id.

    For the backlog gauge, at every scrape: one pass over every tracked interaction, a
    few tens of milliseconds for a million (compiled, each field read is a direct one).
    """
    for state in states.values():
        if state.bucket == PENDING:
            campaign = state.campaign
            counts[campaign] = counts.get(campaign, 0) + 1


def time_of(state: Interaction, stage: int) -> float:
    """When ``state`` entered ``stage`` (:data:`UNKNOWN` if never)."""
    if stage == CREATED:
        return state.at_created
    if stage == PREVIEWING:
        return state.at_previewing
    if stage == PLACED:
        return state.at_placed
    if stage == ROUTED:
        return state.at_routed
    if stage == CONNECTED:
        return state.at_connected
    return state.at_wrapped_up


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
            _known(times[PREVIEWING]),
            _known(times[PLACED]),
            _known(times[ROUTED]),
            _known(times[CONNECTED]),
            _known(times[WRAPPED_UP]),
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


def _call_floor(state: Interaction) -> float:
    """The wrap-up that ended the previous call: the current call's times are all later."""
    return UNKNOWN if state.stage_number == WRAPPED_UP else state.at_wrapped_up


def _belongs(state: Interaction, stage: int, floor: float) -> bool:
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


def _lagging(state: Interaction, versions: Versions, base: float) -> Versions | None:
    """``lagging`` for these attribute versions: ``None`` when each known one is ``base``."""
    v0, v1, v2, v3, v4 = versions
    if (
        (state.campaign is None or v0 == base)
        and (state.campaign_name is None or v1 == base)
        and (state.agent is None or v2 == base)
        and (state.queue is None or v3 == base)
        and (state.mode is None or v4 == base)
    ):
        return None
    return (
        0.0 if state.campaign is None else v0,
        0.0 if state.campaign_name is None else v1,
        0.0 if state.agent is None else v2,
        0.0 if state.queue is None else v3,
        0.0 if state.mode is None else v4,
    )


def rebuild(
    times: Sequence[float | None],
    conversation_ended: float | None,
    closed: bool | None,
    closed_version: float,
    attributes: Sequence[str | None],
    versions: Versions,
    seen: float,
    bucket: int = NO_LIST,
    bucket_version: float = 0.0,
) -> Interaction:
    """An interaction as saved (:mod:`consumer.formats.changelog`): its stage derived again.

    ``attributes`` and ``versions`` are in the order of :data:`Versions`; formats before
    4 saved no list.
    """
    state = Interaction()
    state.at_created = _known(times[CREATED])
    state.at_previewing = _known(times[PREVIEWING])
    state.at_placed = _known(times[PLACED])
    state.at_routed = _known(times[ROUTED])
    state.at_connected = _known(times[CONNECTED])
    state.at_wrapped_up = _known(times[WRAPPED_UP])
    state.at_ended = _known(conversation_ended)
    state.closed = closed
    state.closed_version = closed_version
    campaign, campaign_name, agent, queue, mode = attributes
    state.campaign = None if campaign is None else _intern(campaign)
    state.campaign_name = None if campaign_name is None else _intern(campaign_name)
    state.agent = None if agent is None else _intern(agent)
    state.queue = None if queue is None else _intern(queue)
    state.mode = None if mode is None else _intern(mode)
    state.lagging = _lagging(state, versions, closed_version)
    state.bucket = bucket
    state.bucket_version = bucket_version
    state.seen = seen
    restage(state)
    return state


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
        state.lagging = _lagging(state, (v0, v1, v2, v3, v4), base)
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
    floor = _call_floor(state)
    return [STAGES[s] for s in changed if s <= stage and _belongs(state, s, floor)]


def latencies(state: Interaction, reached: list[Stage]) -> list[tuple[str, float]]:
    """Stage-to-stage durations of the current call completed by the stages just reached."""
    if not reached:
        return []
    floor = _call_floor(state)
    observed = []
    for end in reached:
        finished = time_of(state, end)
        for name, start in _LATENCIES_TO[end]:
            if _belongs(state, start, floor):
                began = time_of(state, start)
                if finished != UNKNOWN and began <= finished:
                    observed.append((name, finished - began))
    return observed


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


def entered_at(state: Interaction) -> float | None:
    """When the interaction entered its current stage, from the snapshots' own times."""
    return _optional(time_of(state, state.stage_number))


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
    return _optional(first)


def starts_new_call(snap: Snapshot, ended_version: float) -> bool:
    """A snapshot of an interaction that already ended reopens it: a newer preview or call.

    Anything else about an ended interaction is a late echo of what ended it.
    """
    return (
        snap.at_placed > ended_version
        or snap.at_previewing > ended_version
        or (snap.active is True and snap.version > ended_version)
    )
