"""The batch step: one fetch in, everything it caused out. Pure: no asyncio, no client.

    records of one fetch, what the source knows of each partition, the wall clock
      -> per record, in order:  heartbeat?  size  decode (else a dead letter)
                                clock (a timestamp from the future moves nothing)  key check
                                its source's tracker (time passes to the record as far
                                as that source vouches, then it applies)
      -> per partition:         caught up?  clock settles  due stalls fire
                                silent sources judged  changed state (interactions and
                                heartbeat sources) encoded, when due
      -> Outputs: alerts, dead letters, re-keyed records, state records, the offsets that
         may be committed once all of those are acknowledged, notices to log, and the
         partition views (lag, caught up) that metrics and readiness read.

Changed state is saved every ``save_every`` seconds per partition (the partitions' save
times shifted against each other), each interaction once however often it changed
meanwhile (Kafka Streams' record cache does the same over its commit interval); a
partition's offset in the outputs stays where its saved state ends, so nothing is
committed that a restart could not restore. :meth:`Step.flush` saves the rest at once,
before a revocation or shutdown commits.

Nothing one record makes the engine raise leaves this module: that record becomes a dead
letter with reason ``engine_error`` (the exception type and message, never the record's
content) and the partition moves on. A monitor that a record can crash-loop is silenced.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from consumer.daemon.outputs import DeadLetter, Notice, Outputs
from consumer.daemon.partition import PartitionState, PartitionView
from consumer.daemon.records import Partition, Record
from consumer.engine import alerting
from consumer.engine.alerting import StallEvent
from consumer.engine.clock import PartitionClock
from consumer.engine.lists import NO_LIST, list_number
from consumer.engine.model import BUCKET_HEADER, Invalid, bucket_of, decode_record, engine_error
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.sources import (
    MAX_SOURCES,
    SourceState,
    SourceWatch,
    interval_believed,
    vouched,
)
from consumer.engine.tracker import Tracker
from consumer.formats import changelog, heartbeat
from consumer.formats.alerts import Alert, AnyAlert, to_alert, to_source_alert

# misrouted interactions warned about, remembered so each is warned once (oldest forgotten)
MISROUTED_REMEMBERED: Final = 10_000
# a warning about one partition's records (future timestamps, unreadable heartbeats) is
# repeated at most this often: a flood of bad records is counted, not logged line by line
WARNING_EVERY: Final = 60.0


@dataclass(frozen=True)
class StepSettings:
    """What the step needs of the settings: plain values."""

    max_record_bytes: int = 1_000_000
    check_keys: bool = True  # warn about snapshots not keyed by their interaction id
    max_clock_skew: float = 60.0
    retired_sources: frozenset[str] = frozenset()  # heartbeats ignored, saved state dropped
    expected_sources: frozenset[str] = frozenset()  # silent until heard, on every partition
    persist_state: bool = True
    save_every: float = 0.0  # seconds between saves of a partition's changed state


class Facts(NamedTuple):
    """What the source knows of the partitions right after a fetch."""

    highwater: Callable[[Partition], int | None]
    confirmed_at: Callable[[Partition], float | None]
    reachable: bool  # a broker answered lately: caught-up judgement may run on its answers


class Step:
    """The partitions this instance owns, and the pure step over one fetched batch."""

    def __init__(
        self,
        settings: StepSettings,
        new_tracker: Callable[[], Tracker],
        watches: Callable[[str], SourceWatch],
    ) -> None:
        self.settings = settings
        self.partitions: dict[Partition, PartitionState] = {}
        self.views: list[PartitionView] = []
        self._new_tracker = new_tracker
        self._new_watch = watches
        self.watches: dict[str, SourceWatch] = {}
        self._misrouted: OrderedDict[str, None] = OrderedDict()
        self._resolved: list[AnyAlert] = []  # source alerts resolved between batches
        self._wall = 0.0  # the wall clock of the last batch

    # -- ownership ------------------------------------------------------------------

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
                self._resolved += [to_source_alert(e) for e in watch.gather(left, wall)]

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
                    self._resolved.append(to_source_alert(retired))
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

    def alerts_of(self, tp: Partition) -> list[AnyAlert]:
        """The firing alerts ``tp`` owns: its fired stalls, and its silent sources.

        Same ``alertId`` and original start as when they fired, so a new owner re-announces
        them as the same alerts. A source silent on several partitions is owned by each,
        under one ``alertId`` (its silence began at the same heartbeat).
        """
        state = self.partitions.get(tp)
        if state is None:
            return []
        owned: list[AnyAlert] = [
            to_alert(alerting.firing(iid, tracker.states[iid], fired))
            for tracker in state.trackers()
            for iid, fired in tracker.stalled.items()
        ]
        watch = self.watches.get(tp[0])
        if watch is not None:
            owned += [
                to_source_alert(watch.alert(name, source, self._wall))
                for name, source in state.sources.items()
                if source.silent_since is not None
            ]
        return owned

    def stalled(self, limit: int | None = None, *, newest: bool = False) -> list[Alert]:
        """Interactions stalled now, oldest stall first (``newest``: last), ``limit`` at most.

        For ``/stalled``: only the alerts listed are built, the choice being one pass over
        the fired stalls (a storm's 50,000 built and encoded took 0.66 s of the loop).
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
            to_alert(alerting.firing(iid, tracker.states[iid], tracker.stalled[iid]))
            for _, iid, tracker in chosen
        ]

    def stalled_count(self) -> int:
        """How many interactions are stalled now."""
        return sum(len(t.stalled) for p in self.partitions.values() for t in p.trackers())

    def silent(self) -> dict[str, int]:
        """Silent heartbeat sources now, per topic."""
        return {topic: watch.silent for topic, watch in self.watches.items()}

    # -- one batch ------------------------------------------------------------------

    def step(
        self,
        batch: Mapping[Partition, Sequence[Record]],
        facts: Facts,
        wall: float,
        monotonic: float,
    ) -> Outputs:
        """Apply one fetched batch, then let time pass on every partition."""
        out = Outputs(alerts=self._resolved)
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
                self._save(tp, state, out, monotonic, due=True)
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

    def _decode(self, record: Record, bucket: int) -> Snapshot | Tombstone | Invalid:
        """The record as the engine takes it, ``bucket`` the list its headers name."""
        value = record.value
        if value is not None and len(value) > self.settings.max_record_bytes:
            detail = f"value of {len(value)} bytes exceeds kafka.max_record_bytes"
            return Invalid("too_large", detail)
        return decode_record(record.key, value, bucket)

    def _apply(
        self,
        tp: Partition,
        state: PartitionState,
        records: Sequence[Record],
        out: Outputs,
        wall: float,
    ) -> None:
        unsourced, clock = state.tracker, state.clock
        skew = self.settings.max_clock_skew
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
                    self._heartbeat(tp, state, record, out, wall)
                    continue
                item = self._decode(record, bucket)
                if isinstance(item, Invalid):
                    out.dead_letters.append(DeadLetter(record, item))
                    unsourced.obs.invalid()
                    continue
                seconds = record.timestamp / 1000.0
                credible = clock.record(seconds, wall)
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
                    check = self.settings.check_keys and key is not None
                    if check and key != item.interaction_id.encode():
                        self._misrouted_snapshot(item.interaction_id, out)
                    # its own credible timestamp vouches for a snapshot's times too
                    now = clock.now
                    reference = seconds if credible and seconds > now else now
                    if item.version > reference + skew:
                        credible = False
                if not credible:
                    self._future(tp, state, record, out, wall)
                fired = tracker.ingest(item, at)
                if fired:
                    _publish(fired, out)
                if seconds > 0:
                    out.applied_delays.append(wall - seconds)
            except Exception as exc:  # one record must never stop the loop
                out.dead_letters.append(DeadLetter(record, engine_error(exc)))
                unsourced.obs.invalid()

    def _heartbeat(
        self, tp: Partition, state: PartitionState, record: Record, out: Outputs, wall: float
    ) -> None:
        """Count a heartbeat and let it vouch for its source's time; never a dead letter."""
        out.heartbeats += 1
        beat = heartbeat.decode(record.value)
        if beat is None:
            self._warn(state, out, wall, "heartbeat_unreadable", _where(record))
            return
        if beat.source in self.settings.retired_sources:
            _ignored(out, "retired")
            return
        if not interval_believed(beat.interval_seconds):
            _ignored(out, "interval")
            context = _where(record) | {
                "source": beat.source,
                "interval_seconds": beat.interval_seconds,
                "hint": "intervalSeconds must lie within 0.1 s - 1 h: the heartbeat is ignored",
            }
            self._warn(state, out, wall, "heartbeat_interval_refused", context)
            return
        up_to = beat.up_to_epoch
        if not state.clock.credible(up_to, wall):
            self._future(tp, state, record, out, wall)
            return
        state.clock.record(record.timestamp / 1000.0, wall)
        source = state.sources.get(beat.source)
        if source is None and len(state.sources) >= MAX_SOURCES:
            _ignored(out, "too_many_sources")
            context = _where(record) | {
                "source": beat.source,
                "hint": f"a partition keeps {MAX_SOURCES} heartbeat sources at most",
            }
            self._warn(state, out, wall, "heartbeat_sources_exceeded", context)
            return
        if source is None:
            state.sources[beat.source] = SourceState(up_to, beat.interval_seconds)
        elif up_to > source.up_to:
            source.up_to, source.interval = up_to, beat.interval_seconds
        else:
            return  # an older or repeated heartbeat: nothing new
        state.sources_dirty.add(beat.source)
        state.clock.vouch(vouched(state.sources))
        self._watch(tp[0])  # the topic's watch judges this partition's silences from now on

    def _watch(self, topic: str) -> SourceWatch:
        watch = self.watches.get(topic)
        if watch is None:
            watch = self.watches[topic] = self._new_watch(topic)
        return watch

    def _sources_of(self, topic: str) -> list[dict[str, SourceState]]:
        """The heartbeat sources of every owned partition of ``topic``."""
        return [s.sources for tp, s in self.partitions.items() if tp[0] == topic]

    def _future(
        self, tp: Partition, state: PartitionState, record: Record, out: Outputs, wall: float
    ) -> None:
        out.future[tp] = out.future.get(tp, 0) + 1
        context = _where(record) | {
            "timestamp_ms": record.timestamp,
            "max_clock_skew_seconds": self.settings.max_clock_skew,
            "hint": "a producer's clock runs ahead: the record is applied, its time not believed",
        }
        self._warn(state, out, wall, "timestamp_from_the_future", context)

    @staticmethod
    def _warn(
        state: PartitionState, out: Outputs, wall: float, event: str, context: dict[str, Any]
    ) -> None:
        """A warning about a producer's records, at most once a minute per partition."""
        if wall - state.warned.get(event, float("-inf")) >= WARNING_EVERY:
            state.warned[event] = wall
            out.notices.append(Notice(logging.WARNING, event, context))

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
        for record in records:
            try:
                if record.headers and heartbeat.is_heartbeat(record.headers):
                    # re-keyed partitions get no heartbeats: they run on the wall clock
                    out.heartbeats += 1
                    continue
                headers = record.headers
                item = self._decode(record, bucket_of(headers) if headers else NO_LIST)
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
                self._save(tp, state, out, monotonic, due=False)
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
            out.alerts += [to_source_alert(e) for e in events]
        self.views = views

    def _tick(self, tracker: Tracker, now: float, out: Outputs) -> None:
        try:
            fired = tracker.tick(now)
        except Exception as exc:  # time must keep passing on the others
            out.notices.append(Notice(logging.ERROR, "tick_failed", _error(exc)))
            return
        _publish(fired, out)

    def _save(
        self, tp: Partition, state: PartitionState, out: Outputs, monotonic: float, *, due: bool
    ) -> None:
        """Encode the changed state, if ``due`` or a save is: the next batch changes it.

        The changed interactions of every tracker (each saved with its source), then the
        changed heartbeat sources (a retired one as a tombstone). Whatever is not saved
        holds the partition's offset back (``saved_offset``).
        """
        if not self.settings.persist_state:
            for tracker in state.trackers():
                tracker.dirty.clear()  # nothing is saved: nothing to remember
            state.sources_dirty.clear()
        elif (_dirty(state) or state.sources_dirty) and (
            due or _save_due(self.settings.save_every, tp[1], state, monotonic)
        ):
            records: list[tuple[bytes, bytes | None]] = []
            lanes = [(None, state.tracker)] + [(n, s.tracker) for n, s in state.lanes.items()]
            for publisher, tracker in lanes:
                if not tracker.dirty:
                    continue
                changed = tracker.take_dirty()
                encoded, failed = changelog.encode_changed(
                    changed, tracker.states, tracker.stalled, publisher
                )
                records += encoded
                for iid, exc in failed:
                    out.notices.append(
                        Notice(logging.ERROR, "state_unsaved", {"interaction": iid} | _error(exc))
                    )
            for name in state.sources_dirty:
                source = state.sources.get(name)
                value = None if source is None else changelog.encode_source(source)
                records.append((changelog.source_key(name), value))
            state.sources_dirty.clear()
            out.states[tp[1]] = records
            state.saved_at = monotonic
        if not state.sources_dirty and not _dirty(state):
            state.saved_offset = state.next_offset


def _dirty(state: PartitionState) -> bool:
    """Some interaction of the partition changed since it was last saved."""
    return bool(state.tracker.dirty) or any(lane.tracker.dirty for lane in state.lanes.values())


def _save_due(every: float, partition: int, state: PartitionState, monotonic: float) -> bool:
    """Whether one of the partition's save times passed since its last save.

    Its save times are every ``every`` seconds, shifted by a fraction of the interval
    that differs from partition to partition (the golden ratio's multiples spread any
    number of them), so an instance's partitions save in different batches. Unshifted,
    four partitions' saves made one batch of 95-140 ms every 5 s at 25k records/s, and
    the records behind it waited that long.
    """
    if every <= 0.0 or state.saved_at == float("-inf"):
        return True
    shift = every * ((partition * 0.618034) % 1.0)
    # the first save time after the last save; counting intervals with ``//`` instead
    # overflows to inf for the tiniest intervals, and inf > inf would never save again
    last = state.saved_at
    return monotonic >= last + every - (last + shift) % every


def _ignored(out: Outputs, reason: str) -> None:
    out.heartbeats_ignored[reason] = out.heartbeats_ignored.get(reason, 0) + 1


def _publish(events: list[StallEvent], out: Outputs) -> None:
    """Engine events as wire alerts; firings also note when they came due (alert delay).

    One event that cannot be formatted (decoding keeps every time formattable, so this
    is a bug) is logged and skipped: it must not take the others of its tick with it.
    """
    for event in events:
        try:
            out.alerts.append(to_alert(event))
        except Exception as exc:  # the others of this tick still go out
            where = {"interaction": event.interaction_id, "rule": event.stall.rule}
            out.notices.append(Notice(logging.ERROR, "alert_unformattable", where | _error(exc)))
            continue
        if event.status == "firing":
            out.fired_due.append(event.stall.due)


def _where(record: Record) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def _error(exc: Exception) -> dict[str, Any]:
    return {"error": engine_error(exc).detail}


def _since(fired: tuple[float, str, Tracker]) -> float:
    return fired[0]
