"""How tracked state is saved to, and read back from, the compacted changelog topic. Pure.

One record per interaction, keyed by interaction id, in the changelog partition with the
same number as the input partition that owns it. The value is the interaction's merged
state and the stall it has fired, if any, with when it fired (MessagePack, one flat array:
compact, and fast to decode when a million of them are restored). An interaction that left
the tracker is a tombstone, so compaction keeps only live interactions and restore time
grows with them, not with the topic's history.

The format is versioned by the array's first element, and every release reads the formats
of the releases before it, so a rolling upgrade loses no interaction and no fired stall
(the arrays are declared in :mod:`consumer.formats.layouts`):

* format 4 (this release): format 3, then the API list the interaction was last seen in
  (``genesys.bucket``): its name, or (name, version) when the version that put it there
  is not the flag's, or nil when no record named one; a list name this release does not
  know restores as none; then, only for an interaction whose records named their
  source (:data:`~consumer.formats.heartbeat.SOURCE_HEADER`), that source's id, which
  restore routes it by (absent, as in formats 3 to 1: no source). 11 bytes more for
  ``previewing``;
* format 3: the six stage times, the conversation's end, the flag and its
  version, the five attributes, their versions only where they differ from the flag's
  (``lagging``, :class:`~consumer.engine.interaction.Interaction`), the tracker time last
  seen, and the fired stall (rule, stage, entry, start, threshold, firing time) or nil.
  About 110 bytes for an interaction in flight, against 190 in format 2;
* format 2: the fields of the Interaction of its release, each attribute with its
  version, then the fired stall's fields (zeros when none fired);
* format 1: nested pairs of (version, value) and the fired wire alert with its stall; its
  firing time is the alert's ``observedAt``.

A value from an unknown format version, or one that does not decode, is skipped on
restore and counted: a newer writer must not crash an older reader during a rollout. So
is one that decodes to a time that is no moment (``inf``, NaN: the stall timers and the
alerts' timestamps cannot hold it) or that is nested too deep to decode (msgspec raises
``RecursionError`` for it): compaction keeps such a record, and every later owner of the
partition would meet it again (:func:`read` says which of these it is).

The partition's heartbeat sources (:class:`~consumer.engine.sources.SourceState`) are saved
beside its interactions, one record per source, keyed :data:`SOURCE_PREFIX` plus the source
id: a UTF-8 interaction id never starts with the byte 0xff, so the two kinds cannot collide.
Their value is its own kind with its own version (``["source", 1, up_to, interval,
silent_since]``); a release before them fails to read it as an interaction and skips it.
A source retired by an operator is a tombstone.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import msgspec

from consumer.engine.alerting import Fired
from consumer.engine.interaction import Interaction, Versions, lagging_versions
from consumer.engine.lifecycle import restage
from consumer.engine.lists import NO_LIST, list_name, list_number
from consumer.engine.sources import SourceState
from consumer.engine.stages import (
    CONNECTED,
    CREATED,
    PLACED,
    PREVIEWING,
    ROUTED,
    STAGES,
    WRAPPED_UP,
    or_unknown,
)
from consumer.engine.stalls import Stall
from consumer.formats import layouts

FORMAT: Final = 4
SOURCE_PREFIX: Final = b"\xffsource\x00"
SOURCE_FORMAT: Final = 1

# why a value is skipped on restore (:func:`read`): the labels of the metric counting them
UNREADABLE: Final = "unreadable"  # another format, or damaged
NOT_FINITE: Final = "not_finite"  # a time that is inf or NaN
TOO_DEEP: Final = "too_deep"  # nested deeper than the decoder goes
REASONS: Final = (UNREADABLE, NOT_FINITE, TOO_DEEP)

_encoder: Final = msgspec.msgpack.Encoder()
_intern: Final = sys.intern  # a module attribute looked up once, not on every call


def encode(state: Interaction, fired: Fired | None, source: str | None = None) -> bytes:
    """The changelog value for a tracked interaction, published by ``source`` if known."""
    saved: list[object] = [
        FORMAT,
        *state.times,
        state.conversation_ended,
        state.closed,
        state.closed_version,
        state.campaign,
        state.campaign_name,
        state.agent,
        state.queue,
        state.mode,
        state.lagging,
        state.seen,
        None,
        None,
    ]
    if fired is not None:
        s = fired.stall
        saved[-2] = (s.rule, int(s.stage), s.entered, s.since, s.threshold, fired.at)
    bucket = list_name(state.bucket)
    if bucket is not None:
        version = state.bucket_version
        saved[-1] = bucket if version == state.closed_version else (bucket, version)
    if source is not None:
        saved.append(source)
    return _encoder.encode(saved)


def encode_changed(
    changed: set[str],
    states: dict[str, Interaction],
    stalled: dict[str, Fired],
    source: str | None = None,
) -> tuple[list[tuple[bytes, bytes | None]], list[tuple[str, Exception]]]:
    """The changelog records of the interactions ``changed`` of ``source``, and those that failed.

    Each is keyed by its id: its state, or a tombstone (``None``) when it left the
    tracker. One that cannot be encoded (a bug) is returned with its exception instead,
    so that it does not stop the others.
    """
    records: list[tuple[bytes, bytes | None]] = []
    failed: list[tuple[str, Exception]] = []
    for iid in changed:
        try:
            state = states.get(iid)
            value = None if state is None else encode(state, stalled.get(iid), source)
        except Exception as exc:  # one state must not stop the others
            failed.append((iid, exc))
            continue
        records.append((iid.encode(), value))
    return records, failed


def source_key(source: str) -> bytes:
    """The changelog key of a source's state."""
    return SOURCE_PREFIX + source.encode()


def source_of(key: bytes) -> str | None:
    """The source a changelog key names, or ``None`` for an interaction's key."""
    if not key.startswith(SOURCE_PREFIX):
        return None
    return key[len(SOURCE_PREFIX) :].decode("utf-8", errors="replace")


def encode_source(state: SourceState) -> bytes:
    """The changelog value for a source's state on a partition."""
    saved = ["source", SOURCE_FORMAT, state.up_to, state.interval, state.silent_since]
    return _encoder.encode(saved)


def read_source(value: bytes) -> SourceState | str:
    """The source state a changelog value holds, or why not (one of :data:`REASONS`)."""
    try:
        saved = layouts.decoder_source_v1.decode(value)
    except msgspec.DecodeError:
        return UNREADABLE
    except RecursionError:
        return TOO_DEEP
    if saved.kind != "source" or saved.format != SOURCE_FORMAT:
        return UNREADABLE
    # an inf or NaN time would stop or never stop the partition's clock
    total = saved.up_to + (saved.interval or 0.0) + (saved.silent_since or 0.0)
    if not math.isfinite(total):
        return NOT_FINITE
    return SourceState(saved.up_to, saved.interval, saved.silent_since)


def _fired(
    rule: str | None, stage: int, entered: float | None, since: float, threshold: float, at: float
) -> Fired | None:
    """The fired stall a record names, if any."""
    if rule is None:
        return None
    return Fired(Stall(rule, STAGES[stage], entered, since, threshold), at)


def _times(saved: layouts.SavedV4 | layouts.SavedV2) -> tuple[float | None, ...]:
    """The six stage times of a flat format (4, 3 or 2), in Stage order."""
    return (
        saved.created,
        saved.previewing,
        saved.placed,
        saved.routed,
        saved.connected,
        saved.wrapped_up,
    )


def _attributes(saved: layouts.SavedV4 | layouts.SavedV2) -> tuple[str | None, ...]:
    """The five attributes of a flat format (4, 3 or 2), in the order ``rebuild`` takes them."""
    return (saved.campaign, saved.campaign_name, saved.agent, saved.queue, saved.mode)


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
    """An interaction as saved: its stage derived again.

    ``attributes`` and ``versions`` are in the order of :data:`Versions`; formats before
    4 saved no list.
    """
    state = Interaction()
    state.at_created = or_unknown(times[CREATED])
    state.at_previewing = or_unknown(times[PREVIEWING])
    state.at_placed = or_unknown(times[PLACED])
    state.at_routed = or_unknown(times[ROUTED])
    state.at_connected = or_unknown(times[CONNECTED])
    state.at_wrapped_up = or_unknown(times[WRAPPED_UP])
    state.at_ended = or_unknown(conversation_ended)
    state.closed = closed
    state.closed_version = closed_version
    campaign, campaign_name, agent, queue, mode = attributes
    state.campaign = None if campaign is None else _intern(campaign)
    state.campaign_name = None if campaign_name is None else _intern(campaign_name)
    state.agent = None if agent is None else _intern(agent)
    state.queue = None if queue is None else _intern(queue)
    state.mode = None if mode is None else _intern(mode)
    state.lagging = lagging_versions(state, versions, closed_version)
    state.bucket = bucket
    state.bucket_version = bucket_version
    state.seen = seen
    restage(state)
    return state


def read(value: bytes) -> tuple[Interaction, Fired | None] | str:
    """The state a changelog value holds (format 4 to 1), or why not (one of :data:`REASONS`)."""
    restored = read_sourced(value)
    return restored if isinstance(restored, str) else restored[:2]


def read_sourced(value: bytes) -> tuple[Interaction, Fired | None, str | None] | str:
    """:func:`read`, and the source that published the interaction (``None``: not known)."""
    try:
        restored = _decode_v4(value)
    except RecursionError:
        return TOO_DEEP
    if restored is None:
        return UNREADABLE
    state, fired, _ = restored
    return restored if _finite(state, fired) else NOT_FINITE


def decode(value: bytes) -> tuple[Interaction, Fired | None] | None:
    """The state a changelog value holds, or ``None`` if it cannot be restored (:func:`read`)."""
    restored = read(value)
    return None if isinstance(restored, str) else restored


def _finite(state: Interaction, fired: Fired | None) -> bool:
    """Every time and version in ``state`` and ``fired`` is a finite number.

    Summed, not checked one by one (a restore reads a million values): a sum is finite
    only when every term is (``inf - inf`` is NaN), and real times are far from
    overflowing it.
    """
    total = state.closed_version + state.seen + state.bucket_version
    for moment in state.times:
        if moment is not None:
            total += moment
    ended = state.conversation_ended
    if ended is not None:
        total += ended
    lagging = state.lagging
    if lagging is not None:
        for version in lagging:
            total += version
    if fired is not None:
        stall = fired.stall
        total += stall.since + stall.threshold + fired.at
        if stall.entered is not None:
            total += stall.entered
    return math.isfinite(total)


def _decode_v4(value: bytes) -> tuple[Interaction, Fired | None, str | None] | None:
    try:
        saved = layouts.decoder_v4.decode(value)
    except msgspec.DecodeError:
        older = _decode_v2(value)
        return None if older is None else (older[0], older[1], None)
    if saved.format not in (3, FORMAT):  # format 3 is format 4 without the list
        return None
    fired = saved.fired
    if fired is not None and not 0 <= fired[1] < len(STAGES):
        return None
    state = rebuild(
        _times(saved),
        saved.conversation_ended,
        saved.closed,
        saved.closed_version,
        _attributes(saved),
        saved.lagging or (saved.closed_version,) * 5,
        saved.seen,
        *_bucket(saved.bucket, saved.closed_version),
    )
    return state, None if fired is None else _fired(*fired), saved.source


def _bucket(saved: str | tuple[str, float] | None, closed_version: float) -> tuple[int, float]:
    """The list number and version format 4 saved (none for format 3, or a name not known)."""
    if saved is None:
        return NO_LIST, 0.0
    name, version = (saved, closed_version) if isinstance(saved, str) else saved
    number = list_number(name)
    return (number, version) if number != NO_LIST else (NO_LIST, 0.0)


def _decode_v2(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = layouts.decoder_v2.decode(value)
    except msgspec.DecodeError:
        return _decode_v1(value)
    if saved.format != 2 or not 0 <= saved.stage < len(STAGES):
        return None
    versions = (
        saved.campaign_version,
        saved.campaign_name_version,
        saved.agent_version,
        saved.queue_version,
        saved.mode_version,
    )
    state = rebuild(
        _times(saved),
        saved.conversation_ended,
        saved.closed,
        saved.closed_version,
        _attributes(saved),
        versions,
        saved.seen,
    )
    return state, _fired(
        saved.rule, saved.stage, saved.entered, saved.since, saved.threshold, saved.fired_at
    )


def _pair_v1(pair: layouts.PairV1) -> tuple[str | None, float]:
    return (None, 0.0) if pair is None else (pair[1], pair[0])


def _decode_v1(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = layouts.decoder_v1.decode(value)
    except msgspec.DecodeError:
        return None
    if saved.format != 1:
        return None
    closed_version, closed = saved.closed or (0.0, None)
    pairs = [
        _pair_v1(saved.campaign),
        _pair_v1(saved.campaign_name),
        _pair_v1(saved.agent),
        _pair_v1(saved.queue),
        _pair_v1(saved.mode),
    ]
    attributes = [value for value, _ in pairs]
    v0, v1, v2, v3, v4 = (version for _, version in pairs)
    state = rebuild(
        saved.times,
        saved.conversation_ended,
        closed,
        closed_version,
        attributes,
        (v0, v1, v2, v3, v4),
        saved.seen,
    )
    fired = None
    if saved.fired is not None:
        alert, old = saved.fired
        if not 0 <= old.stage < len(STAGES):
            return None
        try:
            at = datetime.fromisoformat(alert.observed_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
        fired = Fired(Stall(old.rule, STAGES[old.stage], old.entered, old.since, old.threshold), at)
    return state, fired
