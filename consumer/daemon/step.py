"""The batch step: one fetch in, everything it caused out. Pure: no asyncio, no client.

    records of one fetch, what the source knows of each partition, the wall clock
      -> per record, in order:  heartbeat? (:mod:`consumer.daemon.heartbeats`)
                                size  decode (else a dead letter)  clock (a timestamp
                                from the future moves nothing)  believed?
                                (:mod:`consumer.daemon.ingest`, which replay runs too)
                                key check  its source's tracker (time passes to the
                                record as far as that source vouches, then it applies)
      -> per partition:         caught up?  clock settles  due stalls fire
                                silent sources judged  changed state (interactions and
                                heartbeat sources) encoded, when due
      -> Outputs: alerts, dead letters, re-keyed records, state records, the offsets that
         may be committed once all of those are acknowledged, notices to log, and the
         partition views (lag, caught up) that metrics and readiness read.

Changed state is saved every ``save_every`` seconds per partition
(:mod:`consumer.daemon.saving`); a partition's offset in the outputs stays where its
saved state ends, so nothing is committed that a restart could not restore.
:meth:`Step.flush` saves the rest at once, before a revocation or shutdown commits. The
partitions owned, and what they hold, are :class:`~consumer.daemon.ownership.Ownership`'s.

Nothing one record makes the engine raise leaves this module: that record becomes a dead
letter with reason ``engine_error`` (the exception type and message, never the record's
content) and the partition moves on. A monitor that a record can crash-loop is silenced.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from consumer.daemon import ingest, saving
from consumer.daemon.heartbeats import heard
from consumer.daemon.notices import error, future
from consumer.daemon.outputs import DeadLetter, Notice, Outputs
from consumer.daemon.ownership import Ownership
from consumer.daemon.partition import PartitionState, PartitionView
from consumer.daemon.records import Partition, Record
from consumer.daemon.step_settings import StepSettings
from consumer.engine.alerting import StallEvent
from consumer.engine.lists import NO_LIST, list_number
from consumer.engine.model import BUCKET_HEADER, Invalid, bucket_of, engine_error
from consumer.engine.snapshot import Snapshot
from consumer.engine.sources import (
    SourceWatch,
)
from consumer.engine.tracker import Tracker
from consumer.formats import heartbeat

# misrouted interactions warned about, remembered so each is warned once (oldest forgotten)
MISROUTED_REMEMBERED: Final = 10_000


class Facts(NamedTuple):
    """What the source knows of the partitions right after a fetch."""

    highwater: Callable[[Partition], int | None]
    confirmed_at: Callable[[Partition], float | None]
    reachable: bool  # a broker answered lately: caught-up judgement may run on its answers


class Step(Ownership):
    """The pure step over one fetched batch, on the partitions this instance owns."""

    def __init__(
        self,
        settings: StepSettings,
        new_tracker: Callable[[], Tracker],
        watches: Callable[[str], SourceWatch],
    ) -> None:
        super().__init__(settings, new_tracker, watches)
        self.views: list[PartitionView] = []
        self._misrouted: OrderedDict[str, None] = OrderedDict()

    def step(
        self,
        batch: Mapping[Partition, Sequence[Record]],
        facts: Facts,
        wall: float,
        monotonic: float,
    ) -> Outputs:
        """Apply one fetched batch, then let time pass on every partition."""
        out = Outputs(events=self._resolved)
        self._resolved = []
        self._wall = wall
        for tp, records in batch.items():
            state = self.partitions.get(tp)
            if state is None or state.restoring or not records:
                continue  # revoked, or paused for a restore, since the fetch
            out.records += len(records)
            if state.forward:
                self._forward(state, records, out)
            else:
                self._apply(tp, state, records, out, wall)
            state.next_offset = records[-1].offset + 1
            state.progressed_at = monotonic
        self._settle(facts, out, wall, monotonic)
        out.offsets = self._offsets()
        return out

    def flush(self, monotonic: float, tps: Sequence[Partition] | None = None) -> Outputs:
        """The changed state of ``tps`` (default: all) not saved yet, and the offsets it covers.

        Before a commit that gives partitions up or stops: what is delivered of it is what
        the next owner restores, and the offsets committed then go as far as it does.
        """
        out = Outputs()
        for tp in self.partitions if tps is None else tps:
            state = self.partitions.get(tp)
            if state is not None and not state.restoring and not state.forward:
                saving.save(tp, state, self.settings, out, monotonic, due=True)
        out.offsets = self._offsets()
        return out

    def _offsets(self) -> dict[Partition, int]:
        """Per partition, how far its outputs handed over so far go (see ``saved_offset``)."""
        offsets = {}
        for tp, state in self.partitions.items():
            offset = state.next_offset if state.forward else state.saved_offset
            if offset is not None:
                offsets[tp] = offset
        return offsets

    def _apply(
        self,
        tp: Partition,
        state: PartitionState,
        records: Sequence[Record],
        out: Outputs,
        wall: float,
    ) -> None:
        """Each record through the pipeline (:mod:`consumer.daemon.ingest`), then its tracker."""
        unsourced, clock = state.tracker, state.clock
        settings = self.settings
        max_bytes = settings.max_record_bytes
        for record in records:  # the hot loop: per-record work stays inline
            try:
                # one pass over the headers: heartbeat?, the list, the source
                bucket, source, beat = NO_LIST, None, False
                headers = record.headers
                if headers:
                    for name, value in headers:
                        if name == BUCKET_HEADER:
                            bucket = list_number(value)
                        elif name == heartbeat.SOURCE_HEADER:
                            source = value
                        elif name == heartbeat.HEADER:
                            beat = True
                if beat:
                    if heard(tp, state, record, out, wall, settings):
                        self._watch(tp[0])  # it judges this partition's silences from now on
                    continue
                item = ingest.decode(record.key, record.value, bucket, max_bytes)
                if isinstance(item, Invalid):
                    out.dead_letters.append(DeadLetter(record, item))
                    unsourced.obs.invalid()
                    continue
                seconds = record.timestamp / 1000.0
                credible = ingest.believed(clock, seconds, item, wall)
                tracker, at = unsourced, clock.now
                if source is not None:
                    name = source.decode("utf-8", errors="replace")
                    iid = item.interaction_id
                    # no new lane for an id tracked before its records named their source
                    # (the producer was upgraded meanwhile): it stays where it is, or its
                    # copy would stall; past MAX_SOURCES lanes, none (state.lane)
                    fresh = iid not in unsourced.states
                    lane = state.lane(name) if fresh else state.lanes.get(name)
                    if lane is not None and (fresh or iid in lane.tracker.states):
                        tracker, at = lane.tracker, lane.advance(state.time_of(name))
                if isinstance(item, Snapshot):
                    key = record.key
                    check = settings.check_keys and key is not None
                    if check and key != item.interaction_id.encode():
                        self._misrouted_snapshot(item.interaction_id, out)
                if not credible:
                    future(tp, state, record, out, wall, settings.max_clock_skew)
                fired = tracker.ingest(item, at)
                if fired:
                    _publish(fired, out)
                if seconds > 0:
                    out.applied_delays.append(wall - seconds)
            except Exception as exc:  # one record must never stop the loop
                out.dead_letters.append(DeadLetter(record, engine_error(exc)))
                unsourced.obs.invalid()

    def _misrouted_snapshot(self, interaction_id: str, out: Outputs) -> None:
        """Count a snapshot keyed by something else than its id; warn once per interaction.

        Such snapshots may land on several partitions, each with its own owner, and no
        owner sees the whole interaction: ``kafka.repartition`` fixes that.
        """
        out.misrouted += 1
        if interaction_id in self._misrouted:
            return
        self._misrouted[interaction_id] = None
        if len(self._misrouted) > MISROUTED_REMEMBERED:
            self._misrouted.popitem(last=False)
        out.notices.append(
            Notice(
                logging.WARNING,
                "misrouted_snapshot",
                {"interaction": interaction_id, "hint": "set kafka.repartition = true"},
            )
        )

    def _forward(self, state: PartitionState, records: Sequence[Record], out: Outputs) -> None:
        """Repartition mode: re-key each valid snapshot by its interaction id."""
        max_bytes = self.settings.max_record_bytes
        for record in records:
            try:
                if record.headers and heartbeat.is_heartbeat(record.headers):
                    # re-keyed partitions get no heartbeats: they run on the wall clock
                    out.heartbeats += 1
                    continue
                headers = record.headers
                bucket = bucket_of(headers) if headers else NO_LIST
                item = ingest.decode(record.key, record.value, bucket, max_bytes)
            except Exception as exc:  # one record must never stop the loop
                item = engine_error(exc)
            if isinstance(item, Invalid):
                out.dead_letters.append(DeadLetter(record, item))
                state.tracker.obs.invalid()
            else:
                key = item.interaction_id.encode()
                out.forwards.append((key, record.value, record.timestamp))

    def _settle(self, facts: Facts, out: Outputs, wall: float, monotonic: float) -> None:
        """Per partition: caught up?, time passes, silences judged, changed state encoded."""
        views = []
        # repartition mode: what this instance still has to re-key is behind every partition
        forwarding = any(
            s.forward and (s.next_offset is None or s.next_offset < (facts.highwater(tp) or 0))
            for tp, s in self.partitions.items()
        )
        for tp, state in self.partitions.items():
            highwater = facts.highwater(tp)
            lag = None
            if highwater is not None and state.next_offset is not None:
                lag = max(0, highwater - state.next_offset)
            confirmed = state.confirmed(facts.confirmed_at(tp), wall)
            # the monitor's own outage: only a broker's recent answer shows it caught up
            caught_up = lag == 0 and facts.reachable and confirmed is not None
            if caught_up and (forwarding or (state.next_offset or 0) < state.awaiting):
                caught_up = False
            clock = state.clock
            if not state.restoring and not state.forward:
                if caught_up and not clock.caught_up:
                    state.progressed_at = monotonic
                    out.notices.append(
                        Notice(logging.INFO, "caught_up", {"topic": tp[0], "partition": tp[1]})
                    )
                now = clock.settle(wall, caught_up=caught_up, confirmed=confirmed)
                if now > 0:
                    self._tick(state.tracker, now, out)
                for name, lane in state.lanes.items():
                    at = lane.advance(state.time_of(name))
                    if at > 0:
                        self._tick(lane.tracker, at, out)
                watch = self.watches.get(tp[0])
                if caught_up and confirmed is not None and watch is not None:
                    changed = watch.judge(state.sources, min(confirmed, wall))
                    state.sources_dirty.update(changed)
                saving.save(tp, state, self.settings, out, monotonic, due=False)
            newest = clock.newest_record
            views.append(
                PartitionView(
                    tp[0],
                    tp[1],
                    lag,
                    wall - newest if newest > 0 else None,
                    clock.caught_up,
                    clock.vouched,
                    state.progressed_at,
                    state.restoring,
                )
            )
        for topic, watch in self.watches.items():
            events = watch.gather(self._sources_of(topic), wall)
            out.events += events
        self.views = views

    def _tick(self, tracker: Tracker, now: float, out: Outputs) -> None:
        try:
            fired = tracker.tick(now)
        except Exception as exc:  # time must keep passing on the others
            out.notices.append(Notice(logging.ERROR, "tick_failed", error(exc)))
            return
        _publish(fired, out)


def _publish(events: list[StallEvent], out: Outputs) -> None:
    """The engine's stall events, as they are; firings also note when they came due.

    Delivery formats them for the outside (:mod:`consumer.formats.alerts`), at the edge.
    """
    out.events += events
    for event in events:
        if event.status == "firing":
            out.fired_due.append(event.stall.due)
