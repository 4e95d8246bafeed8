"""How tracked state is saved to, and read back from, the compacted changelog topic. Pure.

One record per interaction, keyed by interaction id, in the changelog partition with the
same number as the input partition that owns it. The value is the interaction's merged
state and the stall it has fired, if any, with when it fired (MessagePack, one flat array:
compact, and fast to decode when a million of them are restored). An interaction that left
the tracker is a tombstone, so compaction keeps only live interactions and restore time
grows with them, not with the topic's history.

The format is versioned by the array's first element, and every release reads the format
of the release before it, so a rolling upgrade loses no interaction and no fired stall:

* format 2 (this release): the fields of :class:`~consumer.engine.lifecycle.Interaction`
  in order, then the fired stall's rule, stage, entry, start, threshold and firing time;
* format 1 (the release before): nested pairs of (version, value) and the fired wire alert
  with its stall; its firing time is the alert's ``observedAt``.

A value from an unknown format version, or one that does not decode, is skipped on
restore and counted: a newer writer must not crash an older reader during a rollout.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Final

import msgspec

from consumer.engine.alerting import Fired
from consumer.engine.lifecycle import Interaction, Stage, derive_stage
from consumer.engine.stalls import Stall

FORMAT: Final = 2


class _Saved(msgspec.Struct, array_like=True, gc=False):
    """Format 2: flat, in the order of ``Interaction``'s fields (``stage`` is derived)."""

    format: int
    created: float | None
    previewing: float | None
    placed: float | None
    routed: float | None
    connected: float | None
    wrapped_up: float | None
    conversation_ended: float | None
    closed: bool | None
    closed_version: float
    campaign: str | None
    campaign_version: float
    campaign_name: str | None
    campaign_name_version: float
    agent: str | None
    agent_version: float
    queue: str | None
    queue_version: float
    mode: str | None
    mode_version: float
    seen: float
    rule: str | None = None  # the fired stall, if any
    stage: int = 0
    entered: float | None = None
    since: float = 0.0
    threshold: float = 0.0
    fired_at: float = 0.0


class _AlertV1(msgspec.Struct, rename="camel", gc=False):
    """What format 1 kept of the fired wire alert: when it was observed."""

    observed_at: str


class _StallV1(msgspec.Struct, gc=False):
    rule: str
    stage: int
    entered: float | None
    since: float
    threshold: float


_PairV1 = tuple[float, str] | None
_Time = float | None


class _SavedV1(msgspec.Struct, array_like=True, gc=False):
    """Format 1, written by the release before this one."""

    format: int
    times: tuple[_Time, _Time, _Time, _Time, _Time, _Time]  # a stage time each
    conversation_ended: float | None
    closed: tuple[float, bool] | None
    campaign: _PairV1
    campaign_name: _PairV1
    agent: _PairV1
    queue: _PairV1
    mode: _PairV1
    seen: float
    fired: tuple[_AlertV1, _StallV1] | None


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(_Saved)
_decoder_v1: Final = msgspec.msgpack.Decoder(_SavedV1)
_intern: Final = sys.intern


def encode(state: Interaction, fired: Fired | None) -> bytes:
    """The changelog value for a tracked interaction."""
    s = state
    saved = _Saved(
        FORMAT,
        s.created,
        s.previewing,
        s.placed,
        s.routed,
        s.connected,
        s.wrapped_up,
        s.conversation_ended,
        s.closed,
        s.closed_version,
        s.campaign,
        s.campaign_version,
        s.campaign_name,
        s.campaign_name_version,
        s.agent,
        s.agent_version,
        s.queue,
        s.queue_version,
        s.mode,
        s.mode_version,
        s.seen,
    )
    if fired is not None:
        stall = fired.stall
        saved.rule, saved.stage, saved.entered = stall.rule, int(stall.stage), stall.entered
        saved.since, saved.threshold, saved.fired_at = stall.since, stall.threshold, fired.at
    return _encoder.encode(saved)


def _interned(value: str | None) -> str | None:
    """One copy of each attribute string, as a merge keeps it."""
    return None if value is None else _intern(value)


def decode(value: bytes) -> tuple[Interaction, Fired | None] | None:
    """The state a changelog value holds (format 2 or 1), or ``None`` when it cannot be read."""
    try:
        saved = _decoder.decode(value)
    except msgspec.DecodeError:
        return _decode_v1(value)
    if saved.format != FORMAT or not 0 <= saved.stage < len(Stage):
        return None
    times = (
        saved.created,
        saved.previewing,
        saved.placed,
        saved.routed,
        saved.connected,
        saved.wrapped_up,
    )
    # positional, in field order: a million of these are built on restore
    state = Interaction(
        *times,
        saved.conversation_ended,
        saved.closed,
        saved.closed_version,
        _interned(saved.campaign),
        saved.campaign_version,
        _interned(saved.campaign_name),
        saved.campaign_name_version,
        _interned(saved.agent),
        saved.agent_version,
        _interned(saved.queue),
        saved.queue_version,
        _interned(saved.mode),
        saved.mode_version,
        derive_stage(times),
        saved.seen,
    )
    fired = None
    if saved.rule is not None:
        stall = Stall(saved.rule, Stage(saved.stage), saved.entered, saved.since, saved.threshold)
        fired = Fired(stall, saved.fired_at)
    return state, fired


def _pair_v1(pair: _PairV1) -> tuple[str | None, float]:
    return (None, 0.0) if pair is None else (_intern(pair[1]), pair[0])


def _decode_v1(value: bytes) -> tuple[Interaction, Fired | None] | None:
    try:
        saved = _decoder_v1.decode(value)
    except msgspec.DecodeError:
        return None
    if saved.format != 1:
        return None
    closed_version, closed = saved.closed or (0.0, None)
    state = Interaction(
        *saved.times,
        saved.conversation_ended,
        closed,
        closed_version,
        *_pair_v1(saved.campaign),
        *_pair_v1(saved.campaign_name),
        *_pair_v1(saved.agent),
        *_pair_v1(saved.queue),
        *_pair_v1(saved.mode),
        derive_stage(saved.times),
        saved.seen,
    )
    fired = None
    if saved.fired is not None:
        alert, old = saved.fired
        if not 0 <= old.stage < len(Stage):
            return None
        try:
            at = datetime.fromisoformat(alert.observed_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
        fired = Fired(Stall(old.rule, Stage(old.stage), old.entered, old.since, old.threshold), at)
    return state, fired
