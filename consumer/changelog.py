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

from typing import Final

import msgspec

from consumer.lifecycle import Interaction, derive_stage
from consumer.stalls import Alert, Stall

FORMAT: Final = 1
Fired = tuple[Alert, Stall]


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


def encode(state: Interaction, fired: Fired | None) -> bytes:
    """The changelog value for a tracked interaction."""
    return _encoder.encode(
        _Saved(
            FORMAT,
            state.times,
            state.conversation_ended,
            state.closed,
            state.campaign,
            state.campaign_name,
            state.agent,
            state.queue,
            state.mode,
            state.seen,
            fired,
        )
    )


def decode(value: bytes) -> tuple[Interaction, Fired | None] | None:
    """The state a changelog value holds, or ``None`` when it cannot be read."""
    try:
        saved = _decoder.decode(value)
    except msgspec.DecodeError:
        return None
    if saved.format != FORMAT or len(saved.times) != 6:
        return None
    state = Interaction(
        times=saved.times,
        conversation_ended=saved.conversation_ended,
        closed=saved.closed,
        campaign=saved.campaign,
        campaign_name=saved.campaign_name,
        agent=saved.agent,
        queue=saved.queue,
        mode=saved.mode,
        stage=derive_stage(saved.times),
        seen=saved.seen,
    )
    return state, saved.fired
