"""What the engine takes in of one record: a snapshot of an interaction, or a tombstone.

A snapshot carries the times of :mod:`consumer.engine.stages`, held as that module says
(:data:`~consumer.engine.stages.UNKNOWN` for a time not given), and the list the record
came from (:mod:`consumer.engine.lists`). :mod:`consumer.engine.model` decodes records into
these; :mod:`consumer.engine.lifecycle` merges snapshots into interactions.
"""

from __future__ import annotations

from typing import Final, final

from mypy_extensions import mypyc_attr

from consumer.engine.lists import NO_LIST
from consumer.engine.stages import (
    CONNECTED,
    CREATED,
    PLACED,
    PREVIEWING,
    ROUTED,
    STAGES,
    WRAPPED_UP,
    newest,
    or_none,
    or_unknown,
)

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

    ``times`` is indexed by :class:`~consumer.engine.stages.Stage`; ``bucket`` is the number
    of the list the record came from (:func:`~consumer.engine.lists.list_number`),
    :data:`~consumer.engine.lists.NO_LIST` when it named none.
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
        self.at_created = or_unknown(times[CREATED])
        self.at_previewing = or_unknown(times[PREVIEWING])
        self.at_placed = or_unknown(times[PLACED])
        self.at_routed = or_unknown(times[ROUTED])
        self.at_connected = or_unknown(times[CONNECTED])
        self.at_wrapped_up = or_unknown(times[WRAPPED_UP])
        self.at_ended = or_unknown(conversation_ended)
        self.bucket = bucket
        # the newest moment this snapshot speaks of; 0 when it has no time at all
        self.version = newest(
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
        """When each stage was entered, indexed by :class:`~consumer.engine.stages.Stage`."""
        return (
            or_none(self.at_created),
            or_none(self.at_previewing),
            or_none(self.at_placed),
            or_none(self.at_routed),
            or_none(self.at_connected),
            or_none(self.at_wrapped_up),
        )

    @property
    def conversation_ended(self) -> float | None:
        """When the conversation of the call ended, if it did."""
        return or_none(self.at_ended)

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
