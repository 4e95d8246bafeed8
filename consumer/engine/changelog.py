"""How tracked state is saved to, and read back from, the compacted changelog topic. Pure.

One record per interaction, keyed by interaction id, in the changelog partition with the
same number as the input partition that owns it. The value is the interaction's merged
state and the stall it has fired, if any (MessagePack, an array per struct: compact, and
fast to decode when a million of them are restored). An interaction that left the
tracker is a tombstone, so compaction keeps only live interactions and restore time
grows with them, not with the topic's history.

A value from an unknown format version, or one that does not decode, is skipped on
restore and counted: a newer writer must not crash an older reader during a rollout.
"""

from __future__ import annotations

import sys
from typing import Final, TypeVar

import msgspec

from consumer.engine.lifecycle import Interaction, derive_stage
from consumer.engine.stalls import Alert, Stall

FORMAT: Final = 1
Fired = tuple[Alert, Stall]
_V = TypeVar("_V", str, bool)


class _Saved(msgspec.Struct, array_like=True, gc=False):
    format: int
    times: tuple[float | None, ...]
    conversation_ended: float | None
    closed: tuple[float, bool] | None
    campaign: tuple[float, str] | None
    campaign_name: tuple[float, str] | None
    agent: tuple[float, str] | None
    queue: tuple[float, str] | None
    mode: tuple[float, str] | None
    seen: float
    fired: tuple[Alert, Stall] | None


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(_Saved)


def _pair(version: float, value: _V | None) -> tuple[float, _V] | None:
    return None if value is None else (version, value)


def encode(state: Interaction, fired: Fired | None) -> bytes:
    """The changelog value for a tracked interaction."""
    return _encoder.encode(
        _Saved(
            FORMAT,
            state.times,
            state.conversation_ended,
            _pair(state.closed_version, state.closed),
            _pair(state.campaign_version, state.campaign),
            _pair(state.campaign_name_version, state.campaign_name),
            _pair(state.agent_version, state.agent),
            _pair(state.queue_version, state.queue),
            _pair(state.mode_version, state.mode),
            state.seen,
            fired,
        )
    )


def _interned(pair: tuple[float, str] | None) -> tuple[str | None, float]:
    """A saved attribute as (value, version), its string kept once as a merge keeps it."""
    return (None, 0.0) if pair is None else (sys.intern(pair[1]), pair[0])


def decode(value: bytes) -> tuple[Interaction, Fired | None] | None:
    """The state a changelog value holds, or ``None`` when it cannot be read."""
    try:
        saved = _decoder.decode(value)
    except msgspec.DecodeError:
        return None
    if saved.format != FORMAT or len(saved.times) != 6:
        return None
    closed_version, closed = saved.closed or (0.0, None)
    # positional, in field order: a million of these are built on restore
    state = Interaction(
        *saved.times,
        saved.conversation_ended,
        closed,
        closed_version,
        *_interned(saved.campaign),
        *_interned(saved.campaign_name),
        *_interned(saved.agent),
        *_interned(saved.queue),
        *_interned(saved.mode),
        derive_stage(saved.times),
        saved.seen,
    )
    return state, saved.fired
