"""The daemon: the asyncio shell around the engine. Fetch, apply, tick, deliver, commit.

One loop, one batch at a time::

    fetch (getmany, up to tick_seconds) -> apply each record to its partition's tracker
    -> advance every partition's clock and fire due stalls (once per batch: a stall the
    batch itself interrupted is judged by the tracker on the snapshots' own times)
    -> encode the changed state -> hand the outputs to delivery -> metrics

Delivery runs beside the loop, one batch at a time and in order: while the broker
acknowledges batch N's outputs, the loop applies batch N+1, and it hands N+1 over only
once N is delivered. Delivering a batch sends its alert records, dead letters and the
state of interactions without an alert in it, waits for the acks, then sends the state
of interactions with an alert (a saved "fired" must never stand for an alert that was
lost), waits again, and commits the batch's offsets in the background.

Delivery is at-least-once: a record's offset is committed only after its effects (alert
records, dead letters, state) were acknowledged. If an output is down, delivery retries
with back-off and the loop, waiting to hand over its next batch, fetches nothing more:
memory stays bounded and lag shows the problem. Redelivered records are harmless,
because merging snapshots is idempotent and alerts carry stable ids.

The rebalance listener and the loop share one lock: a revocation waits for the batch
in hand, then commits what was applied. aiokafka does not call the listener on stop, so
shutdown finishes the batch and commits by itself.

Policy stays out of here: what a record means is the tracker's business, when time
passes is :class:`~consumer.engine.clock.PartitionClock`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from consumer import config
from consumer.adapters.alertmanager import AlertmanagerSink
from consumer.adapters.alerts import Alert, to_alert
from consumer.adapters.deadletter import DeadLetters
from consumer.adapters.kafka import Partition, Record, Sink, Source, ensure_topics
from consumer.adapters.logs import fields
from consumer.adapters.sinks import AlertSink, LogSink, TopicSink
from consumer.adapters.statestore import StateRecord, StateStore
from consumer.engine import alerting
from consumer.engine.clock import PartitionClock
from consumer.engine.lifecycle import Snapshot, Tombstone
from consumer.engine.model import Invalid, decode_record
from consumer.engine.tracker import Observations, Tracker
from consumer.errors import AuthenticationError, BrokerError, OutputError
from consumer.metrics import ConsumerMetrics, EngineMetrics, PartitionView

log = logging.getLogger(__name__)


@dataclass
class _Partition:
    """The runner's bookkeeping for one assigned partition."""

    tracker: Tracker
    clock: PartitionClock = field(default_factory=PartitionClock)
    next_offset: int | None = None  # after the last applied record
    # after the last record whose outputs were acknowledged: as far as a commit may go
    durable: int | None = None
    committed: int | None = None
    progressed_at: float = 0.0  # monotonic time of the last record or catch-up
    forward: bool = False  # an input partition re-keyed into the repartition topic
    restoring: asyncio.Task[None] | None = None  # state being restored: not processed


@dataclass
class _Outputs:
    """What one batch must make durable before its offsets are committed."""

    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[tuple[Record, Invalid]] = field(default_factory=list)
    # (key, value, timestamp ms) to re-key into the repartition topic
    forwards: list[tuple[bytes, bytes | None, int]] = field(default_factory=list)
    # changelog records (key, value) by partition: the state as this batch left it
    states: dict[int, list[StateRecord]] = field(default_factory=dict)
    # offsets to commit once all of the above is acknowledged
    offsets: dict[Partition, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    records: int = 0


class Daemon:
    """Consumes the interactions topic in a group and runs the engine on it."""

    def __init__(
        self,
        settings: config.Settings,
        registry: CollectorRegistry,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.wall = wall
        self.obs = Observations()
        self.partitions: dict[Partition, _Partition] = {}
        self.engine_metrics = EngineMetrics(
            registry,
            lambda: [p.tracker for p in self.partitions.values()],
            settings.metrics.max_campaign_labels,
        )
        self.metrics = ConsumerMetrics(registry, self._views)
        kafka = settings.kafka
        self.source = Source(kafka)
        self.sink = Sink(kafka)
        self.sinks: list[AlertSink] = [LogSink(), TopicSink(self.sink, kafka.alerts_topic)]
        self.alertmanager = None
        if settings.alertmanager.urls:
            self.alertmanager = AlertmanagerSink(settings.alertmanager, registry)
            self.sinks.append(self.alertmanager)
        self.dead_letters = DeadLetters(
            self.sink, kafka.dead_letter_topic, kafka.dead_letter_max_value_bytes
        )
        self.state = StateStore(kafka, self.sink, self.metrics) if kafka.persist_state else None
        self._misrouted_warned: OrderedDict[str, None] = OrderedDict()
        self.joined = False
        self.delivering_since: float | None = None
        self.broker_down_since: float | None = None
        self.last_loop = time.monotonic()
        self._lock = asyncio.Lock()
        self._delivering: asyncio.Task[None] | None = None
        self._committing: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit and leave (signal handlers)."""
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; raise :class:`AuthenticationError` if the broker refuses us."""
        kafka = self.settings.kafka
        await self._until_connected(self._connect)
        if self.alertmanager is not None:
            self.alertmanager.start()
        probe = asyncio.create_task(self._probe_broker(), name="broker-probe")
        try:
            while not self._stopping.is_set():
                self.last_loop = time.monotonic()
                try:
                    batch = await self.source.fetch(
                        self.settings.runtime.tick_seconds, kafka.max_batch_records
                    )
                except BrokerError as exc:
                    log.warning("fetch_failed", extra=fields(error=str(exc)))
                    await self._sleep(1.0)
                    continue
                async with self._lock:
                    await self._handle(batch)
        finally:
            probe.cancel()
            await self._shutdown()

    async def _probe_broker(self) -> None:
        """Ask the brokers for metadata every few seconds, for readiness."""
        while True:
            if await self.source.reachable(timeout=5.0):
                if self.broker_down_since is not None:
                    log.info("broker_reachable")
                self.broker_down_since = None
            elif self.broker_down_since is None:
                self.broker_down_since = time.monotonic()
                log.warning("broker_unreachable")
            await asyncio.sleep(2.0)

    async def _connect(self) -> None:
        kafka = self.settings.kafka
        if kafka.create_topics:
            await ensure_topics(kafka, [kafka.alerts_topic, kafka.dead_letter_topic], 3)
            if kafka.repartition:
                await ensure_topics(
                    kafka, [kafka.repartition_topic_name], 0, partitions_like=kafka.topic
                )
            if kafka.persist_state:
                await ensure_topics(
                    kafka,
                    [kafka.state_topic_name],
                    0,
                    compact=True,
                    partitions_like=kafka.tracked_topic,
                )
        await self.sink.start()
        topics = [kafka.topic, kafka.repartition_topic_name] if kafka.repartition else [kafka.topic]
        await self.source.start(topics, self._revoked, self._assigned)
        log.info(
            "consuming",
            extra=fields(
                topic=kafka.topic, group=kafka.group_id, bootstrap=kafka.bootstrap_servers
            ),
        )

    async def _until_connected(self, connect: Callable[[], Any]) -> None:
        """Retry the first connection with back-off; wrong credentials stop at once."""
        delay = 1.0
        while True:
            try:
                await connect()
                return
            except AuthenticationError:
                raise
            except BrokerError as exc:
                if self._stopping.is_set():
                    raise
                log.warning("broker_unavailable", extra=fields(error=str(exc), retry_in=delay))
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _shutdown(self) -> None:
        async with self._lock:
            await self._commit()
            for part in self.partitions.values():
                if part.restoring is not None:
                    part.restoring.cancel()
        await self.source.stop()  # leaves the group
        await self.sink.stop()
        if self.alertmanager is not None:
            await self.alertmanager.stop()
        log.info("stopped", extra=fields(partitions=len(self.partitions)))

    # -- rebalances -------------------------------------------------------------------

    async def _revoked(self, revoked: list[Partition]) -> None:
        async with self._lock:  # wait for the batch in hand
            await self._commit()
            for tp in revoked:
                part = self.partitions.pop(tp, None)
                if part is not None and part.restoring is not None:
                    part.restoring.cancel()
                    self.metrics.restoring.dec()
        log.info("partitions_revoked", extra=fields(partitions=_names(revoked)))

    async def _assigned(self, assigned: list[Partition]) -> None:
        async with self._lock:
            policy, limits = config.stall_policy(self.settings), config.limits(self.settings)
            kafka = self.settings.kafka
            for tp in assigned:
                if tp in self.partitions:
                    continue
                part = _Partition(Tracker(policy, limits, self.obs), progressed_at=time.monotonic())
                part.forward = kafka.repartition and tp[0] == kafka.topic
                self.partitions[tp] = part
                if self.state is not None and not part.forward:
                    self.source.pause([tp])
                    self.metrics.restoring.inc()
                    part.restoring = asyncio.create_task(self._restore(tp, part))
            self.joined = True
        self.metrics.rebalances.inc()
        log.info("partitions_assigned", extra=fields(partitions=_names(assigned)))

    async def _restore(self, tp: Partition, part: _Partition) -> None:
        """Restore one partition's state, retrying until it works, then let it be read."""
        assert self.state is not None
        delay = 1.0
        while True:
            try:
                await self.state.restore(tp[1], part.tracker)
                break
            except BrokerError as exc:
                log.warning("restore_failed", extra=fields(partition=tp[1], error=str(exc)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        async with self._lock:
            part.restoring = None
            self.metrics.restoring.dec()
            if self.partitions.get(tp) is part:
                self.source.resume([tp])

    # -- one batch --------------------------------------------------------------------

    async def _handle(self, batch: dict[Partition, list[Record]]) -> None:
        outputs = _Outputs()
        for tp, partition_records in batch.items():
            part = self.partitions.get(tp)
            if part is None or not partition_records:
                continue
            outputs.records += len(partition_records)
            if part.forward:
                self._forward(partition_records, outputs)
            else:
                self._apply(part, partition_records, outputs)
            part.next_offset = partition_records[-1].offset + 1
            part.progressed_at = outputs.started
        await self._find_positions()
        self._advance_clocks(outputs)
        self.engine_metrics.record(self.obs.drain())
        outputs.offsets = {
            tp: part.next_offset
            for tp, part in self.partitions.items()
            if part.next_offset is not None
        }
        await self._delivered()  # one batch in delivery at a time, in order
        self._delivering = asyncio.create_task(self._deliver_batch(outputs))

    async def _delivered(self) -> None:
        """Wait until the batch handed over last is delivered (or given up at stop)."""
        if self._delivering is not None:
            await self._delivering

    async def _deliver_batch(self, outputs: _Outputs) -> None:
        await self._deliver(outputs)
        if self.delivering_since is not None:
            return  # gave up delivering at stop: this batch's offsets stay uncommitted
        for tp, offset in outputs.offsets.items():
            part = self.partitions.get(tp)
            if part is not None:  # else revoked meanwhile
                part.durable = offset
        self._commit_soon()
        if outputs.records:
            self.metrics.batch_records.observe(outputs.records)
            self.metrics.batch_seconds.observe(time.monotonic() - outputs.started)

    def _decode(self, record: Record) -> Snapshot | Tombstone | Invalid:
        value = record.value
        if value is not None and len(value) > self.settings.kafka.max_record_bytes:
            return Invalid(
                "too_large", f"value of {len(value)} bytes exceeds kafka.max_record_bytes"
            )
        return decode_record(record.key, value)

    def _apply(self, part: _Partition, records: list[Record], outputs: _Outputs) -> None:
        tracker, clock, alerts = part.tracker, part.clock, outputs.alerts
        wall = self.wall()
        check_keys = not self.settings.kafka.repartition
        for record in records:  # the hot loop: per-record work stays inline
            item = self._decode(record)
            if isinstance(item, Invalid):
                self.obs.events["invalid"] += 1
                outputs.dead_letters.append((record, item))
                continue
            key = record.key
            if check_keys and key is not None and key != item.interaction_id.encode():
                self._misrouted(item.interaction_id)
            clock.record(record.timestamp / 1000.0, wall)
            now = clock.now
            fired = tracker.ingest(item, now)
            if fired:
                alerts += [to_alert(event) for event in fired]

    def _misrouted(self, interaction_id: str) -> None:
        """Count a snapshot keyed by something else than its id; warn once per interaction.

        Such snapshots may land on several partitions, each with its own owner, and no owner
        sees the whole interaction: ``kafka.repartition`` fixes that.
        """
        self.metrics.misrouted.inc()
        if interaction_id not in self._misrouted_warned:
            self._misrouted_warned[interaction_id] = None
            if len(self._misrouted_warned) > 10_000:
                self._misrouted_warned.popitem(last=False)
            log.warning(
                "misrouted_snapshot",
                extra=fields(interaction=interaction_id, hint="set kafka.repartition = true"),
            )

    def _forward(self, records: list[Record], outputs: _Outputs) -> None:
        """Repartition mode: re-key each valid snapshot by its interaction id."""
        for record in records:
            item = self._decode(record)
            if isinstance(item, Invalid):
                self.obs.events["invalid"] += 1
                outputs.dead_letters.append((record, item))
            else:
                outputs.forwards.append(
                    (item.interaction_id.encode(), record.value, record.timestamp)
                )

    async def _find_positions(self) -> None:
        """Partitions nothing was read from yet: learn where they start, for lag."""
        for tp, part in self.partitions.items():
            if part.next_offset is None and self.source.highwater(tp) is not None:
                try:
                    part.next_offset = await asyncio.wait_for(self.source.position(tp), 5.0)
                except (TimeoutError, BrokerError):
                    continue  # try again after the next batch

    def _advance_clocks(self, outputs: _Outputs) -> None:
        wall = self.wall()
        for tp, part in self.partitions.items():
            if part.restoring is not None or part.forward:
                continue
            highwater = self.source.highwater(tp)
            caught_up = (
                highwater is not None
                and part.next_offset is not None
                and part.next_offset >= highwater
            )
            if caught_up and not part.clock.caught_up:
                part.progressed_at = time.monotonic()
                log.info("caught_up", extra=fields(topic=tp[0], partition=tp[1]))
            now = part.clock.settle(wall, caught_up=caught_up)
            if now > 0:
                outputs.alerts += [to_alert(e) for e in part.tracker.tick(now)]
            if self.state is not None:
                changed = part.tracker.take_dirty()
                if changed:  # encoded now: the next batch changes the trackers
                    outputs.states[tp[1]] = self.state.records(part.tracker, changed)

    async def _deliver(self, outputs: _Outputs) -> None:
        """Make the batch's outputs durable, retrying with back-off until they are."""
        if not (outputs.alerts or outputs.dead_letters or outputs.forwards or outputs.states):
            return
        # a saved "fired" must never stand for an alert that was lost: the state of an
        # interaction with an alert in this batch is saved once the alert is acknowledged
        alerted = {alert.interaction_id.encode() for alert in outputs.alerts}
        unalerted_states = {
            partition: [r for r in records if r[0] not in alerted]
            for partition, records in outputs.states.items()
        }
        alerted_states = {
            partition: [r for r in records if r[0] in alerted]
            for partition, records in outputs.states.items()
        }
        for sink in self.sinks:
            if not sink.durable:  # best effort, handed over once
                await sink.publish(outputs.alerts)
        delay = 0.5
        self.delivering_since = time.monotonic()
        while True:
            try:
                acks = []
                for sink in self.sinks:
                    if sink.durable:
                        acks += await sink.publish(outputs.alerts)
                for record, invalid in outputs.dead_letters:
                    acks.append(await self.dead_letters.publish(record, invalid))
                for key, value, timestamp in outputs.forwards:
                    topic = self.settings.kafka.repartition_topic_name
                    acks.append(await self.sink.send(topic, key, value, timestamp_ms=timestamp))
                acks += await self._save_state(unalerted_states)
                await self.sink.confirm(acks)
                await self.sink.confirm(await self._save_state(alerted_states))
                break
            except OutputError as exc:
                self.metrics.output_errors.inc()
                log.warning("output_failed", extra=fields(error=str(exc), retry_in=delay))
                if self._stopping.is_set():
                    return
                await self._sleep(delay)
                delay = min(delay * 2, self.settings.runtime.output_retry_max_seconds)
        self.delivering_since = None
        for sink in self.sinks:
            for alert in outputs.alerts:
                self.metrics.alerts_published.labels(sink.name, alert.status).inc()
        for record, invalid in outputs.dead_letters:
            self.metrics.dead_letters.labels(invalid.reason).inc()
            log.warning(
                "dead_letter",
                extra=fields(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    reason=invalid.reason,
                    error=invalid.detail,
                ),
            )

    async def _save_state(self, states: dict[int, list[StateRecord]]) -> list[asyncio.Future[Any]]:
        acks: list[asyncio.Future[Any]] = []
        if self.state is not None:
            for partition, records in states.items():
                if records:
                    acks += await self.state.save(partition, records)
        return acks

    def _commit_soon(self) -> None:
        """Commit what is durable now without waiting for the broker's answer.

        The next batch need not wait a round trip for it: the offsets are taken now, while
        everything before them is durable, and one commit runs at a time (a batch that
        finds one running leaves its offsets to the next).
        """
        if self._committing is not None and not self._committing.done():
            return
        offsets = self._uncommitted()
        if offsets:
            self._committing = asyncio.create_task(self._commit_offsets(offsets))

    async def _commit(self) -> None:
        """Deliver the batch handed over, commit what is durable, wait (rebalance, shutdown)."""
        await self._delivered()
        if self._committing is not None:
            await self._committing
        offsets = self._uncommitted()
        if offsets:
            await self._commit_offsets(offsets)

    def _uncommitted(self) -> dict[Partition, int]:
        return {
            tp: part.durable
            for tp, part in self.partitions.items()
            if part.durable is not None and part.durable != part.committed
        }

    async def _commit_offsets(self, offsets: dict[Partition, int]) -> None:
        if await self.source.commit(offsets):
            for tp, offset in offsets.items():
                part = self.partitions.get(tp)
                if part is not None:  # else revoked meanwhile
                    part.committed = offset
            self.metrics.commits.labels("ok").inc()
            self.metrics.last_commit.set(self.wall())
        else:
            self.metrics.commits.labels("failed").inc()

    # -- what HTTP shows ----------------------------------------------------------------

    def _views(self) -> Iterator[PartitionView]:
        wall = self.wall()
        for tp, part in self.partitions.items():
            highwater = self.source.highwater(tp)
            lag = None
            if highwater is not None and part.next_offset is not None:
                lag = max(0, highwater - part.next_offset)
            newest = part.clock.newest_record
            event_lag = wall - newest if newest > 0 else None
            yield PartitionView(tp[0], tp[1], lag, event_lag, part.clock.caught_up)

    def readiness(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        if not self.joined:
            return ["not yet joined the consumer group"]
        problems = []
        now = time.monotonic()
        stuck_after = self.settings.runtime.stuck_after_seconds
        if now - self.last_loop > stuck_after:
            problems.append(f"fetch loop has not turned for {now - self.last_loop:.0f}s")
        if self.broker_down_since is not None:
            problems.append(f"no broker answers, for {now - self.broker_down_since:.0f}s")
        if self.delivering_since is not None and now - self.delivering_since > 5.0:
            # acks normally take milliseconds; seconds mean an output refuses records
            problems.append(f"outputs not acknowledged for {now - self.delivering_since:.0f}s")
        restoring = sum(p.restoring is not None for p in self.partitions.values())
        if restoring:
            problems.append(f"restoring the state of {restoring} partition(s)")
        for view, part in zip(self._views(), self.partitions.values(), strict=True):
            if view.lag and now - part.progressed_at > stuck_after:
                problems.append(
                    f"{view.topic}[{view.partition}] lag {view.lag} with no progress for "
                    f"{now - part.progressed_at:.0f}s"
                )
        return problems

    def stalled(self) -> list[Alert]:
        """Every interaction stalled now, oldest stall first."""
        alerts = [
            to_alert(alerting.firing(iid, p.tracker.states[iid], fired))
            for p in self.partitions.values()
            for iid, fired in p.tracker.stalled.items()
        ]
        return sorted(alerts, key=lambda a: a.stalled_since)


def _names(partitions: list[Partition]) -> list[str]:
    return [f"{topic}[{partition}]" for topic, partition in sorted(partitions)]
