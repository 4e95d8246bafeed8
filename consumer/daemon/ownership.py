"""The partitions an instance owns: taking them on and giving them up, and what they hold.

A partition is assigned empty, restored (its interactions and heartbeat sources back, their
silences continued), and given up with its sources' silences for the next owner to go on
with. Its firing alerts and stalls are read here, for a new owner's re-announcement and for
``/stalled``. The batch step (:mod:`consumer.daemon.step`) runs over the partitions owned.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence

from consumer.daemon.outputs import AlertEvent
from consumer.daemon.partition import PartitionState
from consumer.daemon.records import Partition
from consumer.daemon.step_settings import StepSettings
from consumer.engine import alerting
from consumer.engine.alerting import StallEvent
from consumer.engine.clock import PartitionClock
from consumer.engine.sources import SourceState, SourceWatch, vouched
from consumer.engine.tracker import Tracker


class Ownership:
    """The partitions this instance owns, their heartbeat sources' watches, what they hold."""

    def __init__(
        self,
        settings: StepSettings,
        new_tracker: Callable[[], Tracker],
        watches: Callable[[str], SourceWatch],
    ) -> None:
        self.settings = settings
        self.partitions: dict[Partition, PartitionState] = {}
        self._new_tracker = new_tracker
        self._new_watch = watches
        self.watches: dict[str, SourceWatch] = {}
        self._resolved: list[AlertEvent] = []  # sources' silences resolved between batches
        self._wall = 0.0  # the wall clock of the last batch

    def assign(
        self, tp: Partition, *, forward: bool, restoring: bool, now: float, wall: float = 0.0
    ) -> PartitionState:
        """Take ``tp`` on at ``wall``; returns its (empty) state, for the restore."""
        state = PartitionState(
            self._new_tracker(),
            PartitionClock(self.settings.max_clock_skew),
            self._new_tracker,
            forward=forward,
            restoring=restoring,
            progressed_at=now,
        )
        self.partitions[tp] = state
        if not restoring and not forward:
            self._expect(tp, state, wall)
        return state

    def revoke(self, tps: Sequence[Partition], wall: float) -> None:
        """Give ``tps`` up, with their sources' silences: their next owner continues those.

        Without saved state no owner could: a silence left with no partition here then
        resolves with the next batch, as the daemon has nobody to hand it to.
        """
        for tp in tps:
            self.partitions.pop(tp, None)
        for topic, watch in self.watches.items():
            left = self._sources_of(topic)
            if self.settings.persist_state:
                watch.forget(left)
            else:
                self._resolved += watch.gather(left, wall)

    def position(self, tp: Partition, offset: int) -> None:
        """Where ``tp`` starts, for a partition nothing was read from yet (lag needs it)."""
        state = self.partitions.get(tp)
        if state is not None and state.next_offset is None:
            state.next_offset = offset

    def forwarded(self, landed: Mapping[Partition, int]) -> None:
        """Re-keyed records were delivered: each partition waits to read as far as they go."""
        for tp, end in landed.items():
            state = self.partitions.get(tp)
            if state is not None and end > state.awaiting:
                state.awaiting = end

    def unpositioned(self) -> list[Partition]:
        """Partitions nothing was read from yet, whose start is not known."""
        return [tp for tp, s in self.partitions.items() if s.next_offset is None]

    def restored(
        self, tp: Partition, sources: Mapping[str, SourceState] | None = None, wall: float = 0.0
    ) -> bool:
        """``tp``'s state is back at ``wall``: it may be processed; ``False`` if revoked since.

        Its heartbeat sources bound its clock before it judges anything, and their silences
        continue the alerts the previous owner raised. A retired source's saved state is
        dropped, and its alert, if it was firing, resolved as ``retired``.
        """
        state = self.partitions.get(tp)
        if state is None:
            return False
        state.restoring = False
        if not sources:  # a partition without heartbeats (or saved before they were saved)
            self._expect(tp, state, wall)
            return True
        watch = self._watch(tp[0])
        for name, source in sources.items():
            if name in self.settings.retired_sources:
                state.sources_dirty.add(name)  # a tombstone with the next save
                if source.silent_since is not None:
                    retired = watch.retire(name, source.silent_since, self._wall)
                    self._resolved.append(retired)
            else:
                state.sources[name] = source
        state.clock.vouch(vouched(state.sources))
        watch.adopt(state.sources)
        self._expect(tp, state, wall)
        return True

    def _expect(self, tp: Partition, state: PartitionState, wall: float) -> None:
        """The expected sources ``tp`` has not heard from vouch for no time past ``wall``.

        So a source that never beat (a poller refused from its first start) stops the
        clock and is reported silent like one that stopped, ``source_silent_seconds`` on;
        it is saved like a heard one, so a restart does not restart its wait.
        """
        expected = self.settings.expected_sources - self.settings.retired_sources
        missing = [name for name in sorted(expected) if name not in state.sources]
        if not missing:
            return
        for name in missing:
            state.sources[name] = SourceState(wall, None)
            state.sources_dirty.add(name)
        state.clock.vouch(vouched(state.sources))
        self._watch(tp[0])  # the topic's watch judges this partition's silences from now on

    def alerts_of(self, tp: Partition) -> list[AlertEvent]:
        """The firing alerts ``tp`` owns, as engine events: its fired stalls, silent sources.

        Formatted, they have the same ``alertId`` and original start as when they fired,
        so a new owner re-announces them as the same alerts. A source silent on several
        partitions is owned by each, under one ``alertId`` (its silence began at the same
        heartbeat).
        """
        state = self.partitions.get(tp)
        if state is None:
            return []
        owned: list[AlertEvent] = [
            alerting.firing(iid, tracker.states[iid], fired)
            for tracker in state.trackers()
            for iid, fired in tracker.stalled.items()
        ]
        watch = self.watches.get(tp[0])
        if watch is not None:
            owned += [
                watch.alert(name, source, self._wall)
                for name, source in state.sources.items()
                if source.silent_since is not None
            ]
        return owned

    def stalled(self, limit: int | None = None, *, newest: bool = False) -> list[StallEvent]:
        """Interactions stalled now, oldest stall first (``newest``: last), ``limit`` at most.

        For ``/stalled``, which formats them: only the events listed are built, the choice
        being one pass over the fired stalls (a storm's 50,000 built and encoded took 0.66 s
        of the loop).
        """
        fired = (
            (stall.stall.since, iid, tracker)
            for p in self.partitions.values()
            for tracker in p.trackers()
            for iid, stall in tracker.stalled.items()
        )
        if limit is None:
            chosen = sorted(fired, key=_since, reverse=newest)
        else:
            chosen = (heapq.nlargest if newest else heapq.nsmallest)(limit, fired, key=_since)
        return [
            alerting.firing(iid, tracker.states[iid], tracker.stalled[iid])
            for _, iid, tracker in chosen
        ]

    def stalled_count(self) -> int:
        """How many interactions are stalled now."""
        return sum(len(t.stalled) for p in self.partitions.values() for t in p.trackers())

    def silent(self) -> dict[str, int]:
        """Silent heartbeat sources now, per topic."""
        return {topic: watch.silent for topic, watch in self.watches.items()}

    def _watch(self, topic: str) -> SourceWatch:
        watch = self.watches.get(topic)
        if watch is None:
            watch = self.watches[topic] = self._new_watch(topic)
        return watch

    def _sources_of(self, topic: str) -> list[dict[str, SourceState]]:
        """The heartbeat sources of every owned partition of ``topic``."""
        return [s.sources for tp, s in self.partitions.items() if tp[0] == topic]


def _since(fired: tuple[float, str, Tracker]) -> float:
    return fired[0]
