"""The changelog's records as msgspec reads them: this release's format and those before.

:mod:`consumer.formats.changelog` says what the fields mean; this module only declares
them. It is never compiled (``setup.py``): msgspec builds its decoders from the structs'
annotations, which a mypyc-compiled module does not keep as written.
"""

from __future__ import annotations

from typing import Final

import msgspec

_Time = float | None
Times = tuple[_Time, _Time, _Time, _Time, _Time, _Time]  # a stage time each, in Stage order
# the fired stall: rule, stage, entered, since, threshold, when it fired
FiredV3 = tuple[str, int, float | None, float, float, float]


class SavedV3(msgspec.Struct, array_like=True, gc=False):
    """Format 3: flat; an attribute's version only where it is not ``closed_version``."""

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
    campaign_name: str | None
    agent: str | None
    queue: str | None
    mode: str | None
    lagging: tuple[float, float, float, float, float] | None
    seen: float
    fired: FiredV3 | None


class SavedV4(SavedV3, array_like=True, gc=False):
    """Format 4: format 3, the list the interaction was in or nil, then its source.

    The list is its name when its version is ``closed_version`` (the common case), else
    (name, version). A format 3 array ends before ``bucket``, so this struct reads it
    too, with no list; an interaction whose records named no source ends after
    ``bucket``.
    """

    bucket: str | tuple[str, float] | None = None
    source: str | None = None  # the heartbeat source that published it; absent: none


class SavedV2(msgspec.Struct, array_like=True, gc=False):
    """Format 2: flat, the fields of the Interaction of its release (``stage`` is derived)."""

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


class AlertV1(msgspec.Struct, rename="camel", gc=False):
    """What format 1 kept of the fired wire alert: when it was observed."""

    observed_at: str


class StallV1(msgspec.Struct, gc=False):
    """What format 1 kept of the fired stall."""

    rule: str
    stage: int
    entered: float | None
    since: float
    threshold: float


PairV1 = tuple[float, str] | None


class SavedV1(msgspec.Struct, array_like=True, gc=False):
    """Format 1: pairs of (version, value), the fired wire alert with its stall."""

    format: int
    times: Times
    conversation_ended: float | None
    closed: tuple[float, bool] | None
    campaign: PairV1
    campaign_name: PairV1
    agent: PairV1
    queue: PairV1
    mode: PairV1
    seen: float
    fired: tuple[AlertV1, StallV1] | None


class SourceRecordV1(msgspec.Struct, array_like=True, gc=False):
    """A source's state on a partition, format 1: its kind first (interactions: an int)."""

    kind: str
    format: int
    up_to: float
    interval: float | None
    silent_since: float | None


decoder_source_v1: Final = msgspec.msgpack.Decoder(SourceRecordV1)
decoder_v4: Final = msgspec.msgpack.Decoder(SavedV4)  # formats 4 and 3
decoder_v2: Final = msgspec.msgpack.Decoder(SavedV2)
decoder_v1: Final = msgspec.msgpack.Decoder(SavedV1)
