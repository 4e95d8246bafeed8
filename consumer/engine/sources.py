"""Which sources are alive: heartbeats per partition, and one alert per silent source. Pure.

A producer that sends heartbeats (:mod:`consumer.engine.heartbeat`) sends one to every
partition after each round. A :class:`SourceWatch` keeps, per source and partition, the
newest heartbeat's ``up_to``, and judges silence only where the monitor can see: on a
partition that is caught up, with the broker's last answer (``confirmed``) as the time
"now" (while the monitor itself is behind or cut off, a missing heartbeat proves nothing).

A source is *silent* when, on any partition this instance owns, ``confirmed - up_to``
exceeds ``silent_after``; it is then reported once (``firing``), and once more
(``resolved``) when every partition has a fresh heartbeat again, or when this instance no
longer owns any partition of it. That is one alert for a dead feed, where the stall rules
alone would raise one for every interaction in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

SourceStatus = Literal["firing", "resolved"]


class SourceEvent(msgspec.Struct, frozen=True, gc=False):
    """A source went silent, or spoke again: plain values, formatted at the edge."""

    status: SourceStatus
    topic: str
    source: str
    last_up_to: float  # the newest heartbeat's up_to when the silence began
    threshold: float
    observed_at: float
    silent_for: float


@dataclass
class _Source:
    beats: dict[int, float] = field(default_factory=dict)  # partition -> newest up_to
    silent_since: float | None = None  # up_to of the newest heartbeat when it went silent


class SourceWatch:
    """The heartbeat sources of one topic, as this instance sees its partitions."""

    def __init__(self, topic: str, silent_after: float) -> None:
        self.topic = topic
        self.silent_after = silent_after
        self._sources: dict[str, _Source] = {}

    def beat(self, partition: int, source: str, up_to: float) -> None:
        """A heartbeat of ``source`` read from ``partition``."""
        beats = self._sources.setdefault(source, _Source()).beats
        if up_to > beats.get(partition, 0.0):
            beats[partition] = up_to

    def newest(self, partition: int) -> float | None:
        """The newest heartbeat ``up_to`` seen on ``partition``, of any source."""
        times = [s.beats[partition] for s in self._sources.values() if partition in s.beats]
        return max(times, default=None)

    @property
    def silent(self) -> int:
        """How many sources are silent now."""
        return sum(s.silent_since is not None for s in self._sources.values())

    def judge(self, confirmed: dict[int, float], now: float) -> list[SourceEvent]:
        """Judge silence on the caught-up partitions, ``confirmed`` (partition -> when)."""
        events = []
        for name, source in self._sources.items():
            ages = [seen - source.beats[p] for p, seen in confirmed.items() if p in source.beats]
            if not ages:
                continue  # nothing seen where the monitor can see: no verdict either way
            if source.silent_since is None and max(ages) > self.silent_after:
                source.silent_since = max(source.beats.values())
                events.append(self._event("firing", name, source, now))
            elif source.silent_since is not None and max(ages) <= self.silent_after:
                events.append(self._event("resolved", name, source, now))
                source.silent_since = None
        return events

    def forget(self, partitions: Iterable[int], now: float) -> list[SourceEvent]:
        """``partitions`` are no longer ours; sources left with none are resolved here."""
        events = []
        gone = set(partitions)
        for name, source in list(self._sources.items()):
            for p in gone:
                source.beats.pop(p, None)
            if not source.beats:
                if source.silent_since is not None:
                    events.append(self._event("resolved", name, source, now))
                del self._sources[name]
        return events

    def _event(self, status: SourceStatus, name: str, source: _Source, now: float) -> SourceEvent:
        since = source.silent_since if source.silent_since is not None else 0.0
        return SourceEvent(
            status, self.topic, name, since, self.silent_after, now, max(0.0, now - since)
        )
