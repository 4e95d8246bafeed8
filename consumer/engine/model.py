"""The wire format: ``CampaignInteraction`` snapshots and how they are decoded.

Only what the engine uses is decoded: the interaction id, the campaign's id and name,
the agent's and the queue's ids, the dialing mode, ``activePreviewCall``, the six stage
times and the conversation's end time. Everything else in a record (the disposition, the
conversation's id and participants, contact, script, skills, phone numbers, caller names,
fields the API adds later) is unknown to the decoder: skipped unread, so it can never make
a record invalid (the domain brief: never fail a record over its disposition), and
personal data is never decoded at all.

Producers publish the dialer's JSON in camelCase (the API's own names); producers that
serialised through the old Ruby SDK emit snake_case, and a record may mix both. The wire
structs (:mod:`consumer.engine.wire`) read both spellings in one pass; where both are
present camelCase wins.

Rules that hold for every decode:

* every field is optional, ``null`` and absent mean the same;
* date-times are RFC 3339 with or without fractional seconds, ``Z`` or an offset; a
  date-time without any offset is taken as UTC, which is what the dialer writes;
* times are kept at millisecond resolution, the API's own: ``.123`` and ``.123456`` are
  the same instant (digits beyond the microsecond are first rounded to it, by msgspec);
* a date-time whose UTC value lies outside years 1-9999 is invalid, so every time the
  engine holds can be formatted again (:func:`iso`);
* ``dialingMode`` is normalised to lowercase;
* anything else (bad bytes, not JSON, not an object, a decoded field of the wrong type,
  no interaction id) is an :class:`Invalid` value with a one-line reason naming the
  field, never an exception.

The list the interaction came from is not in the value: the poller names it in the
record's ``genesys.bucket`` header (:data:`BUCKET_HEADER`), which :func:`bucket_of` reads
and the caller hands to :func:`decode_record`. A header naming no list this release knows
is as good as none: never a reason to refuse the record.
"""

from __future__ import annotations

import operator
import typing
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from consumer.engine.lists import NO_LIST, list_number
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.stages import STAGES
from consumer.engine.wire import SNAKE, CampaignInteraction, ConversationRef, wire_name
from consumer.engine.wire import decoder as _decoder

# the header in which the poller names the API's list an interaction was in
BUCKET_HEADER: Final = "genesys.bucket"

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


def engine_error(exc: Exception) -> Invalid:
    """A record the engine raised on: the exception's type and the first line of its message.

    The engine holds no personal data (it is never decoded), so the message can name at
    most ids and times; it is cut to one line of at most 200 characters all the same.
    """
    message = str(exc).strip().partition("\n")[0][:200]
    return Invalid("engine_error", f"{type(exc).__name__}: {message}")


# The instants a date-time may stand for: years 1-9999 in UTC, what datetime can format.
FIRST_EPOCH: Final = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LAST_EPOCH: Final = datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC).timestamp()
_OUT_OF_RANGE: Final = "date-time outside years 1-9999 in UTC"


def to_epoch(moment: datetime) -> float:
    """Epoch seconds of a decoded date-time, to the millisecond; no offset means UTC.

    Raises :class:`ValueError` when its UTC value lies outside years 1-9999.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    below_ms = moment.microsecond % 1000
    if below_ms:
        moment = moment.replace(microsecond=moment.microsecond - below_ms)
    epoch = moment.timestamp()
    if FIRST_EPOCH <= epoch <= LAST_EPOCH:
        return epoch
    raise ValueError(_OUT_OF_RANGE)


_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso(epoch: float) -> str:
    """ISO-8601 UTC to the nearest millisecond with ``Z``, the way the dialer writes times.

    Defined for every instant from :data:`FIRST_EPOCH` to :data:`LAST_EPOCH`, which is
    every time :func:`decode` lets through. Whole milliseconds are counted rather than
    the float converted: far from 1970 a float no longer holds a time to the microsecond,
    and ``.999`` would print as ``.998``.
    """
    moment = _UNIX_EPOCH + timedelta(milliseconds=round(epoch * 1000))
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


# Each stage's entry time: its struct attribute, in Stage order.
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
    stage.label: wire_name(name) for stage, name in zip(STAGES, _TIME_ATTRIBUTES, strict=True)
}
# camelCase times then their snake_case twins: read in one call
_decode: Final = _decoder.decode  # looked up once: compiled, a global costs a dict lookup
_UTC: Final = UTC
_times: Final = operator.attrgetter(*_TIME_ATTRIBUTES, *(name + SNAKE for name in _TIME_ATTRIBUTES))


def decode_interaction(text: str | bytes) -> CampaignInteraction | Invalid:
    """Decode the fields the engine uses of one JSON snapshot, or say why it is invalid."""
    try:
        if isinstance(text, bytes) and not text.isascii():
            # msgspec skips unknown fields without checking their bytes; insist on UTF-8
            # (ASCII, what the dialer almost always sends, is UTF-8: no copy to check it)
            text = text.decode("utf-8")
        return _decode(text)
    except UnicodeDecodeError as exc:
        return Invalid("not_utf8", f"value is not UTF-8 (byte {exc.start})")
    except UnicodeEncodeError as exc:
        # text handed over as str may hold a lone surrogate, which has no UTF-8 form
        return Invalid("not_utf8", f"value has no UTF-8 form (character {exc.start})")
    except msgspec.ValidationError as exc:
        message = str(exc)
        return Invalid("invalid_field" if " - at `$" in message else "not_object", message)
    except msgspec.DecodeError as exc:
        return Invalid("not_json", str(exc))
    except RecursionError:
        # msgspec recurses into nesting, even inside fields it skips
        return Invalid("too_deep", "JSON nested too deeply to read")


def _out_of_range(record: CampaignInteraction) -> Invalid:
    """The :class:`Invalid` naming the first date-time in use in ``record`` out of range."""
    conversation = record.conversation or ConversationRef()
    pairs = [
        (name, getattr(record, name), getattr(record, name + SNAKE)) for name in _TIME_ATTRIBUTES
    ]
    pairs.append(("conversation.end_time", conversation.end_time, conversation.end_time_snake))
    for name, camel, snake in pairs:
        # the value used is the one that counts: camelCase where present
        where, moment = (wire_name(name), camel) if camel is not None else (name, snake)
        if moment is not None:
            try:
                to_epoch(moment)
            except ValueError:
                return Invalid("invalid_field", f"{_OUT_OF_RANGE} - at `$.{where}`")
    raise AssertionError("no date-time out of range")  # only called after one raised


def _epoch(moment: datetime | None) -> float | None:
    """Epoch seconds of a time a snapshot gave; :class:`ValueError` when out of range."""
    if moment is None:
        return None
    if moment.tzinfo is _UTC and not moment.microsecond % 1000:
        # the dialer's own form (``Z``, milliseconds): always in range, to_epoch's checks
        # would only cost time on the hot path
        return moment.timestamp()
    return to_epoch(moment)


def bucket_of(headers: Iterable[tuple[str, bytes]]) -> int:
    """The list a record's headers name (:func:`~consumer.engine.lists.list_number`)."""
    for name, value in headers:
        if name == BUCKET_HEADER:
            return list_number(value)
    return NO_LIST


def to_snapshot(record: CampaignInteraction, bucket: int = NO_LIST) -> Snapshot | Invalid:
    """Keep what the engine needs of a decoded record: one spelling, times in epoch seconds.

    ``bucket`` is the list the record's headers named (:func:`bucket_of`).
    """
    if not record.id:
        return Invalid("missing_id", "no interaction id - at `$.id`")
    # camelCase then snake_case; a datetime is never false, so ``or`` falls back to the
    # snake_case twin only on None
    both: tuple[datetime | None, ...] = _times(record)
    conversation = record.conversation
    ended = None if conversation is None else conversation.end_time or conversation.end_time_snake
    try:
        times = (
            _epoch(both[0] or both[6]),
            _epoch(both[1] or both[7]),
            _epoch(both[2] or both[8]),
            _epoch(both[3] or both[9]),
            _epoch(both[4] or both[10]),
            _epoch(both[5] or both[11]),
        )
        ended_epoch = None if ended is None else to_epoch(ended)
    except ValueError:
        return _out_of_range(record)
    mode = record.dialing_mode
    if mode is None:
        mode = record.dialing_mode_snake
    active = record.active_preview_call
    if active is None:
        active = record.active_preview_call_snake
    campaign = record.campaign
    agent = record.agent
    queue = record.queue
    return Snapshot(
        record.id,
        None if campaign is None else campaign.id,
        None if campaign is None else campaign.name,
        None if agent is None else agent.id,
        None if queue is None else queue.id,
        None if mode is None else mode.lower(),
        active,
        times,
        ended_epoch,
        bucket,
    )


def decode(text: str | bytes, bucket: int = NO_LIST) -> Snapshot | Invalid:
    """Decode one record value into the engine's snapshot, or an :class:`Invalid`."""
    record = decode_interaction(text)
    if isinstance(record, Invalid):
        return record
    return to_snapshot(record, bucket)


def decode_record(
    key: bytes | str | None, value: bytes | str | None, bucket: int = NO_LIST
) -> Snapshot | Tombstone | Invalid:
    """Decode one Kafka-shaped record: a snapshot, or a tombstone (null value) for its key.

    ``bucket`` is the list the record's headers named (:func:`bucket_of`).
    """
    if value is not None:
        return decode(value, bucket)
    if not key:
        return Invalid("missing_id", "tombstone (null value) without a key")
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Invalid("not_utf8", f"tombstone key is not UTF-8 (byte {exc.start})")
    return Tombstone(key)
