"""Heartbeat records: a source saying "I am alive, and I have published everything I saw".

A producer that supports them (``interaction-consumer poll`` and ``simulate``) sends,
after each successful round, one heartbeat record to every partition of the topic. A
heartbeat is marked by the header :data:`HEADER` (its value is the source id); its key
is the source id and its value a JSON object::

    {"source": "genesys-poller", "upTo": "2026-11-30T10:00:00.000Z", "intervalSeconds": 10}

``upTo`` is the time up to which the source has published every change it saw (for the
poller: when the oldest poll of the round began); ``intervalSeconds`` how often it sends
heartbeats, from which the consumer derives how long a silence it tolerates. Consumers
never treat a heartbeat as a snapshot: the daemon counts it and bounds the clock of the
source's interactions by it (see :mod:`consumer.engine.clock`), ``replay`` skips it.

A producer that sends heartbeats also says which source published each of its records,
snapshots and tombstones alike: the header :data:`SOURCE_HEADER`, its value the source
id. An interaction is judged only as far as its own source vouches, so a dead source
stops the clock of its interactions, not of another source's on the same partition.
A record without it is judged as far as every source of its partition vouches (the
oldest ``upTo``): nobody in particular vouches for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import msgspec

HEADER: Final = "interaction-consumer.heartbeat"
SOURCE_HEADER: Final = "interaction-consumer.source"


class Heartbeat(msgspec.Struct, frozen=True, rename="camel"):
    """One heartbeat: which source, up to when it published everything, how often it beats."""

    source: str
    up_to: datetime
    interval_seconds: float | None = None

    @property
    def up_to_epoch(self) -> float:
        """``up_to`` in epoch seconds (a time without an offset is UTC)."""
        moment = self.up_to if self.up_to.tzinfo else self.up_to.replace(tzinfo=UTC)
        return moment.timestamp()


_decoder: Final = msgspec.json.Decoder(Heartbeat)
_encoder: Final = msgspec.json.Encoder()


def is_heartbeat(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    """A record with these headers is a heartbeat, not a snapshot."""
    return headers is not None and any(name == HEADER for name, _ in headers)


def source_header(source: str) -> tuple[str, bytes]:
    """The header that says ``source`` published a record."""
    return (SOURCE_HEADER, source.encode())


def encode(source: str, up_to: float, interval_seconds: float | None) -> bytes:
    """The value of a heartbeat record."""
    moment = datetime.fromtimestamp(up_to, UTC)
    return _encoder.encode(Heartbeat(source, moment, interval_seconds))


def decode(value: bytes | None) -> Heartbeat | None:
    """The heartbeat a record value holds, or ``None`` when it cannot be read."""
    if value is None:
        return None
    try:
        beat = _decoder.decode(value)
        beat.up_to_epoch  # noqa: B018 - a date-time outside what epoch seconds hold fails here
    except (msgspec.DecodeError, ValueError, OverflowError, OSError):
        return None
    return beat
