"""The wire format: ``CampaignInteraction`` snapshots and how they are decoded.

Producers publish the dialer's JSON in camelCase (the API's own names); producers that
serialised through the old Ruby SDK emit snake_case. Both decode into the same structs:
the camelCase classes are the canonical ones, and snake_case twins are generated from
them (subclasses, so the rest of the code sees one type).

Rules that hold for every decode:

* every field is optional, ``null`` and absent mean the same;
* unknown fields are ignored anywhere (the API grows), never rejected;
* date-times are RFC 3339 with or without fractional seconds, ``Z`` or an offset; a
  date-time without any offset is taken as UTC, which is what the dialer writes;
* ``dialingMode`` is normalised to lowercase, ``disposition`` is kept as a raw string;
* anything else (bad bytes, not JSON, not an object, a field of the wrong type, no
  interaction id) is an :class:`Invalid` value with a one-line reason naming the field,
  never an exception.

Personal data (``destinationAddress``, ``callerAddress``, ``callerName``, contact names)
is decoded only so that a wrongly typed value is caught; :func:`decode` drops it when it
builds the :class:`Snapshot` the engine works with, so nothing downstream can leak it.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

import msgspec

from consumer.engine.lifecycle import STAGES, Snapshot, Tombstone

# ---------------------------------------------------------------------------------------
# wire structs (camelCase, canonical)


class EntityRef(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A ``DomainEntityRef``: ``{id, name, selfUri}``."""

    id: str | None = None
    name: str | None = None


class Participant(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """The parts of a conversation participant that tell whose leg it is and if it ended."""

    id: str | None = None
    purpose: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class ConversationBasic(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """The conversation hosting the call; ``endTime`` is null while it is up."""

    id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    participants: list[Participant] | None = None


class CampaignInteraction(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One snapshot of a dialer interaction, as the Genesys Cloud API names its fields."""

    id: str | None = None
    campaign: EntityRef | None = None
    agent: EntityRef | None = None
    contact: EntityRef | None = None
    destination_address: str | None = None
    active_preview_call: bool | None = None
    last_active_preview_wrapup_time: datetime | None = None
    creation_time: datetime | None = None
    call_placed_time: datetime | None = None
    call_routed_time: datetime | None = None
    preview_connected_time: datetime | None = None
    queue: EntityRef | None = None
    script: EntityRef | None = None
    disposition: str | None = None
    caller_name: str | None = None
    caller_address: str | None = None
    preview_pop_delivered_time: datetime | None = None
    conversation: ConversationBasic | None = None
    dialer_system_participant_id: str | None = None
    dialing_mode: str | None = None
    skills: list[EntityRef] | None = None


# ---------------------------------------------------------------------------------------
# snake_case twins, generated so the two spellings can never drift apart


_S = TypeVar("_S", bound=msgspec.Struct)


def _identity(name: str) -> str:
    return name


def _snake_twin(cls: type[_S], made: dict[type, type]) -> type[_S]:
    """Return a subclass of ``cls`` whose wire names are the Python (snake_case) names."""
    if cls not in made:
        fields = [(f.name, _rewrite(f.type, made), f.default) for f in msgspec.structs.fields(cls)]
        made[cls] = msgspec.defstruct(
            cls.__name__ + "Snake", fields, bases=(cls,), rename=_identity, frozen=True
        )
    return made[cls]


def _rewrite(tp: Any, made: dict[type, type]) -> Any:
    """Replace every struct type inside ``tp`` by its snake_case twin."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _snake_twin(tp, made)
    args = typing.get_args(tp)
    if not args:
        return tp
    rewritten = tuple(_rewrite(a, made) for a in args)
    if isinstance(tp, types.UnionType):
        return functools.reduce(operator.or_, rewritten)
    return typing.get_origin(tp)[rewritten]


_SnakeCampaignInteraction = _snake_twin(CampaignInteraction, {})

# Fields whose two spellings differ: a camelCase decode that found none of them may be a
# snake_case record, and only then is the second decode paid for.
_MULTIWORD_FIELDS: Final = tuple(
    f.name for f in msgspec.structs.fields(CampaignInteraction) if f.name != f.encode_name
)

# ---------------------------------------------------------------------------------------
# what the engine sees


InvalidReason = Literal[
    "not_utf8",
    "not_json",
    "too_deep",
    "not_object",
    "invalid_field",
    "missing_id",
    "too_large",
    "engine_error",
]
INVALID_REASONS: Final[tuple[InvalidReason, ...]] = typing.get_args(InvalidReason)


class Invalid(msgspec.Struct, frozen=True):
    """A record that cannot be tracked: ``reason`` is a fixed code, ``detail`` one line."""

    reason: InvalidReason
    detail: str


def to_epoch(moment: datetime) -> float:
    """Epoch seconds of a decoded date-time; one without an offset is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, the way the dialer writes times."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _epoch_or_none(moment: datetime | None) -> float | None:
    return None if moment is None else to_epoch(moment)


def _ref_id(ref: EntityRef | None) -> str | None:
    return None if ref is None else ref.id


# The struct attribute holding each stage's entry time, in Stage order.
_TIME_ATTRIBUTES: Final = (
    "creation_time",
    "preview_pop_delivered_time",
    "call_placed_time",
    "call_routed_time",
    "preview_connected_time",
    "last_active_preview_wrapup_time",
)
# Each stage's entry time as the API names it on the wire, by stage label.
WIRE_TIMES: Final = {
    stage.label: field.encode_name
    for stage, name in zip(STAGES, _TIME_ATTRIBUTES, strict=True)
    for field in msgspec.structs.fields(CampaignInteraction)
    if field.name == name
}

_camel: Final = msgspec.json.Decoder(CampaignInteraction)
_snake: Final = msgspec.json.Decoder(_SnakeCampaignInteraction)


_multiword: Final = operator.attrgetter(*_MULTIWORD_FIELDS)
_times: Final = operator.attrgetter(*_TIME_ATTRIBUTES)


def _looks_snake(record: CampaignInteraction) -> bool:
    # most records carry creationTime, a multi-word field: no need to fetch the others
    return record.creation_time is None and _multiword(record).count(None) == len(_MULTIWORD_FIELDS)


def decode_interaction(text: str | bytes) -> CampaignInteraction | Invalid:
    """Decode one JSON snapshot in either spelling, or say in one line why it is invalid."""
    try:
        if isinstance(text, bytes):
            # msgspec skips unknown fields without checking their bytes; insist on UTF-8
            text = text.decode("utf-8")
        record = _camel.decode(text)
        if _looks_snake(record):
            snake = _snake.decode(text)
            if not _looks_snake(snake):
                record = snake
    except UnicodeDecodeError as exc:
        return Invalid("not_utf8", f"value is not UTF-8 (byte {exc.start})")
    except msgspec.ValidationError as exc:
        message = str(exc)
        return Invalid("invalid_field" if " - at `$" in message else "not_object", message)
    except msgspec.DecodeError as exc:
        return Invalid("not_json", str(exc))
    except RecursionError:
        # msgspec recurses into nesting, even inside fields it skips
        return Invalid("too_deep", "JSON nested too deeply to read")
    return record


def to_snapshot(record: CampaignInteraction) -> Snapshot | Invalid:
    """Keep what the engine needs of a decoded record, dropping all personal data."""
    if not record.id:
        return Invalid("missing_id", "no interaction id - at `$.id`")
    conversation = record.conversation
    times = tuple([None if t is None else to_epoch(t) for t in _times(record)])
    return Snapshot(
        interaction_id=record.id,
        campaign_id=_ref_id(record.campaign),
        campaign_name=None if record.campaign is None else record.campaign.name,
        agent_id=_ref_id(record.agent),
        queue_id=_ref_id(record.queue),
        dialing_mode=None if record.dialing_mode is None else record.dialing_mode.lower(),
        active=record.active_preview_call,
        times=times,
        conversation_ended=None if conversation is None else _epoch_or_none(conversation.end_time),
    )


def decode(text: str | bytes) -> Snapshot | Invalid:
    """Decode one record value into the engine's snapshot, or an :class:`Invalid`."""
    record = decode_interaction(text)
    if isinstance(record, Invalid):
        return record
    return to_snapshot(record)


def decode_record(
    key: bytes | str | None, value: bytes | str | None
) -> Snapshot | Tombstone | Invalid:
    """Decode one Kafka-shaped record: a snapshot, or a tombstone (null value) for its key."""
    if value is not None:
        return decode(value)
    if not key:
        return Invalid("missing_id", "tombstone (null value) without a key")
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Invalid("not_utf8", f"tombstone key is not UTF-8 (byte {exc.start})")
    return Tombstone(key)
