"""How tracked state is saved to, and read back from, the compacted changelog topic. Pure.

One record per interaction, keyed by interaction id, in the changelog partition with the
same number as the input partition that owns it. The value is the interaction's merged
state and the stall it has fired, if any, with when it fired (MessagePack, one flat array:
compact, and fast to decode when a million of them are restored). An interaction that left
the tracker is a tombstone, so compaction keeps only live interactions and restore time
grows with them, not with the topic's history.

The format is versioned by the array's first element, and every release reads the formats
of the releases before it, so a rolling upgrade loses no interaction and no fired stall
(the arrays are declared in :mod:`consumer.engine.formats`):

* format 3 (this release): the six stage times, the conversation's end, the flag and its
  version, the five attributes, their versions only where they differ from the flag's
  (``lagging``, :class:`~consumer.engine.lifecycle.Interaction`), the tracker time last
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
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

import msgspec

from consumer.engine import formats
from consumer.engine.alerting import Fired
from consumer.engine.lifecycle import STAGES, Interaction, rebuild
from consumer.engine.stalls import Stall

FORMAT: Final = 3

# why a value is skipped on restore (:func:`read`): the labels of the metric counting them
UNREADABLE: Final = "unreadable"  # another format, or damaged
NOT_FINITE: Final = "not_finite"  # a time that is inf or NaN
TOO_DEEP: Final = "too_deep"  # nested deeper than the decoder goes
REASONS: Final = (UNREADABLE, NOT_FINITE, TOO_DEEP)

_encoder: Final = msgspec.msgpack.Encoder()


def encode(state: Interaction, fired: Fired | None) -> bytes:
    """The changelog value for a tracked interaction."""
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
    ]
    if fired is not None:
        s = fired.stall
        saved[-1] = (s.rule, int(s.stage), s.entered, s.since, s.threshold, fired.at)
    return _encoder.encode(saved)


def encode_changed(
    changed: set[str], states: dict[str, Interaction], stalled: dict[str, Fired]
) -> tuple[list[tuple[bytes, bytes | None]], list[tuple[str, Exception]]]:
    """The changelog records of the interactions ``changed``, and those that failed.

    Each is keyed by its id: its state, or a tombstone (``None``) when it left the
    tracker. One that cannot be encoded (a bug) is returned with its exception instead,
    so that it does not stop the others.
    """
    records: list[tuple[bytes, bytes | None]] = []
    failed: list[tuple[str, Exception]] = []
    for iid in changed:
        try:
            state = states.get(iid)
            value = None if state is None else encode(state, stalled.get(iid))
        except Exception as exc:  # one state must not stop the others
            failed.append((iid, exc))
            continue
        records.append((iid.encode(), value))
    return records, failed


def _fired(
    rule: str | None, stage: int, entered: float | None, since: float, threshold: float, at: float
) -> Fired | None:
    """The fired stall a record names, if any."""
    if rule is None:
        return None
    return Fired(Stall(rule, STAGES[stage], entered, since, threshold), at)


def _times(saved: formats.SavedV3 | formats.SavedV2) -> tuple[float | None, ...]:
    """The six stage times of a flat format (3 or 2), in Stage order."""
    return (
        saved.created,
        saved.previewing,
        saved.placed,
        saved.routed,
        saved.connected,
        saved.wrapped_up,
    )


def _attributes(saved: formats.SavedV3 | formats.SavedV2) -> tuple[str | None, ...]:
    """The five attributes of a flat format (3 or 2), in the order ``rebuild`` takes them."""
    return (saved.campaign, saved.campaign_name, saved.agent, saved.queue, saved.mode)


def read(value: bytes) -> tuple[Interaction, Fired | None] | str:
    """The state a changelog value holds (format 3, 2 or 1), or why not (one of :data:`REASONS`)."""
    try:
        restored = _decode_v3(value)
    except RecursionError:
        return TOO_DEEP
    if restored is None:
        return UNREADABLE
    state, fired = restored
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
    total = state.closed_version + state.seen
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


def _decode_v3(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = formats.decoder_v3.decode(value)
    except msgspec.DecodeError:
        return _decode_v2(value)
    if saved.format != FORMAT:
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
    )
    return state, None if fired is None else _fired(*fired)


def _decode_v2(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = formats.decoder_v2.decode(value)
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


def _pair_v1(pair: formats.PairV1) -> tuple[str | None, float]:
    return (None, 0.0) if pair is None else (pair[1], pair[0])


def _decode_v1(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = formats.decoder_v1.decode(value)
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
