"""The merged state of one interaction, as the tracker stores a million of them.

What the rules of :mod:`consumer.engine.lifecycle` derive and merge, held as
:mod:`consumer.engine.stages` says: compiled, a native class that no garbage collector pass
visits; uncompiled, an untracked msgspec struct of the same fields.
"""

from __future__ import annotations

from typing import Final, final

import msgspec
from mypy_extensions import mypyc_attr

from consumer.engine.lists import NO_LIST, list_name
from consumer.engine.stages import (
    CONNECTED,
    CREATED,
    PLACED,
    PREVIEWING,
    ROUTED,
    STAGES,
    UNKNOWN,
    Stage,
    newest,
    or_none,
)

# a version for each last-writer-wins attribute: campaign, campaign name, agent, queue, mode
Versions = tuple[float, float, float, float, float]


@final
@mypyc_attr(acyclic=True)  # a million of them must cost the garbage collector nothing
class Interaction:
    """The merged state of one interaction: only what the lifecycle's rules need.

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
        return or_none(self.at_created)

    @property
    def previewing(self) -> float | None:
        """When the preview popped."""
        return or_none(self.at_previewing)

    @property
    def placed(self) -> float | None:
        """When the call was placed."""
        return or_none(self.at_placed)

    @property
    def routed(self) -> float | None:
        """When the call was routed to the agent."""
        return or_none(self.at_routed)

    @property
    def connected(self) -> float | None:
        """When the customer was connected."""
        return or_none(self.at_connected)

    @property
    def wrapped_up(self) -> float | None:
        """When the agent last wrapped up."""
        return or_none(self.at_wrapped_up)

    @property
    def conversation_ended(self) -> float | None:
        """When the conversation of the latest call ended, if it did."""
        return or_none(self.at_ended)

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
        return newest(
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


def time_of(state: Interaction, stage: int) -> float:
    """When ``state`` entered ``stage`` (:data:`~consumer.engine.stages.UNKNOWN` if never)."""
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


def lagging_versions(state: Interaction, versions: Versions, base: float) -> Versions | None:
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
