"""The daemon: a thin asyncio loop over the pure batch step.

The path of one record, from fetch to commit::

    Consumer.fetch ─► Step.step (pure: decode, clock, tracker, alerts, state; the offsets)
                 ─► Delivery.deliver (in the background, one batch at a time, in order:
                    alerts, dead letters, state; acknowledged)
                 ─► OffsetLedger.delivered ─► Consumer.commit (in the background)

While batch N is delivered, batch N+1 is fetched and stepped; N+1 is handed over only once
N is delivered, so an output that refuses records stops fetching (memory stays bounded,
lag shows it). The rebalance listener and the loop share one lock: a revocation waits for
the batch in hand, delivers it and the state not saved yet, commits, tells the alert sinks
that keep alerts alive to send nothing more for the partitions' alerts, then gives the
partitions up; a restored partition's fired stalls are re-announced by its new owner.
aiokafka does not call the listener on stop, so shutdown does the same by itself.

Everything outside (consumer, producer, state reader, alert sinks, clocks) is injected
through :mod:`consumer.daemon.ports`; :mod:`consumer.testing.fakes` has test doubles, and
``run(until_idle=True)`` drains what there is and returns, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry

from consumer import engine
from consumer.backoff import Backoff
from consumer.daemon import campaigns, readiness, restore
from consumer.daemon.commits import Commits
from consumer.daemon.delivery import Delivery, Topics
from consumer.daemon.engine_metrics import EngineMetrics
from consumer.daemon.ledger import OffsetLedger
from consumer.daemon.metrics import ConsumerMetrics
from consumer.daemon.outputs import AlertEvent, Outputs
from consumer.daemon.partition import PartitionState
from consumer.daemon.policy import batch_step, stall_policy, tracking_budget
from consumer.daemon.ports import AlertSink, Clock, Consumer, Follower, Producer, StateReader
from consumer.daemon.probe import BrokerProbe
from consumer.daemon.records import Batch, Partition
from consumer.daemon.step import Facts
from consumer.daemon.supervise import Supervisor
from consumer.engine.observations import Observations
from consumer.engine.sources import SourceState
from consumer.engine.tracker import Tracker
from consumer.errors import AuthenticationError, BrokerError
from consumer.observe.logs import fields
from consumer.settings.schema import Settings

log = logging.getLogger(__name__)


class Daemon:
    """Consumes the interactions topic in a group and runs the engine on it."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        consumer: Consumer,
        producer: Producer,
        state_reader: StateReader | None,
        sinks: Sequence[AlertSink],
        clock: Clock,
        prepare: Callable[[], Awaitable[None]] | None = None,
        campaigns: Follower | None = None,
    ) -> None:
        kafka, runtime = settings.kafka, settings.runtime
        self.settings, self.consumer = settings, consumer
        self.producer, self.clock = producer, clock
        self._prepare = prepare  # e.g. create missing topics; retried like connecting
        self._campaigns = campaigns  # the poller's campaign settings, when it publishes them
        self._campaigns_read = asyncio.Event()  # restored partitions are judged once set
        if campaigns is None:
            self._campaigns_read.set()
        self.state_reader = state_reader if kafka.persist_state else None
        self.obs = Observations()
        self.policy = stall_policy(settings)
        persist = self.state_reader is not None
        # one memory budget for every tracker of the process (consumer.daemon.memory)
        self.budget = tracking_budget(settings, self._trackers)
        self.step = batch_step(
            settings, self.policy, self.obs, persist_state=persist, budget=self.budget
        )
        self.engine_metrics = EngineMetrics(
            registry, self._trackers, settings.metrics.max_campaign_labels, self.budget
        )
        self.metrics = ConsumerMetrics(registry, lambda: self.step.views, self.step.silent)
        self.ledger = OffsetLedger()
        self._stopping = asyncio.Event()
        # every background task starts through it: none dies unseen (consumer.daemon.supervise)
        self.supervisor = Supervisor(
            self.metrics.task_failures, self.stop, lambda: Backoff(1.0, 60.0)
        )
        self.commits = Commits(consumer, self.ledger, self.metrics, clock, self.supervisor)
        topics = Topics.of(kafka, persist_state=self.state_reader is not None)
        backoff = Backoff(0.5, runtime.output_retry_max_seconds)
        self.delivery = Delivery(
            producer, sinks, topics, self.metrics, clock, backoff, self._stopping
        )
        self.joined = False
        self.probe = BrokerProbe(consumer, clock)
        self.last_loop = clock.monotonic()
        self._lock = asyncio.Lock()
        self._delivering: asyncio.Task[bool] | None = None
        self._restores: dict[Partition, asyncio.Task[None]] = {}
        self._restored: dict[str, str] = {}  # how far each restore got, for readiness

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit and leave (signal handlers)."""
        self._stopping.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Run until :meth:`stop` (or, ``until_idle``, until a fetch finds nothing to do).

        Raises :class:`~consumer.errors.AuthenticationError` if the broker refuses us, and
        :class:`~consumer.daemon.supervise.TaskFailedError` once stopped by a background
        task's failure.
        """
        kafka, tick = self.settings.kafka, self.settings.runtime.tick_seconds
        background: list[asyncio.Task[None]] = []
        try:
            await self._connect()  # inside: what started of it is stopped if the rest fails
            # both recover by running again: the probe holds nothing, the follower skips
            # a record it cannot use and reads on from where it was
            background.append(self.supervisor.start("broker-probe", self.probe.run, "restart"))
            if self._campaigns is not None:
                following = functools.partial(
                    campaigns.follow,
                    self._campaigns,
                    self.policy,
                    self.settings.stalls.preview_timeout_grace_seconds,
                    self._lock,
                    self._trackers,
                    self.metrics,
                    self._campaigns_read,
                )
                background.append(self.supervisor.start("campaigns", following, "restart"))
            while not self._stopping.is_set():
                self.last_loop = self.clock.monotonic()
                try:
                    batch = await self.consumer.fetch(tick, kafka.max_batch_records)
                except BrokerError as exc:
                    log.warning("fetch_failed", extra=fields(error=str(exc)))
                    await self._sleep(1.0)
                    continue
                async with self._lock:
                    out = await self._step(batch)
                if until_idle and not out.records and self._idle():
                    break
        finally:
            for task in background:
                task.cancel()
            await self._shutdown()
        if self.supervisor.failed is not None:
            raise self.supervisor.failed

    async def _connect(self) -> None:
        """Connect and subscribe, retrying with back-off; wrong credentials stop at once."""
        kafka = self.settings.kafka
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                if self._prepare is not None:
                    await self._prepare()
                await self.producer.start()
                topics = [kafka.topic]
                if kafka.repartition:
                    topics.append(kafka.repartition_topic_name)
                await self.consumer.start(topics, self._revoked, self._assigned)
                break
            except AuthenticationError:
                raise
            except BrokerError as exc:
                if self._stopping.is_set():
                    raise
                delay = backoff.next()
                log.warning("broker_unavailable", extra=fields(error=str(exc), retry_in=delay))
                await self._sleep(delay)
        log.info(
            "consuming",
            extra=fields(
                topic=kafka.topic,
                group=kafka.group_id,
                bootstrap=kafka.bootstrap_servers,
                engine="compiled" if engine.compiled() else "python",
                budget=None if self.budget is None else self.budget.interactions,
            ),
        )

    async def _step(self, batch: Batch) -> Outputs:
        """Step one batch, then hand its outputs to delivery once the previous one is done."""
        for tp in self.step.unpositioned():
            if self.consumer.highwater(tp) is not None:
                with contextlib.suppress(TimeoutError, BrokerError):
                    self.step.position(tp, await asyncio.wait_for(self.consumer.position(tp), 5))
        facts = Facts(
            self.consumer.highwater, self.consumer.confirmed_at, self.probe.down_since is None
        )
        out = self.step.step(batch, facts, self.clock.wall(), self.clock.monotonic())
        for notice in out.notices:
            log.log(notice.level, notice.event, extra=fields(**notice.fields))
        self.engine_metrics.record(self.obs.drain())
        self.metrics.record(out)
        await self._hand_over(out)
        return out

    async def _hand_over(self, out: Outputs) -> None:
        """Deliver ``out`` in the background once the batch handed over before it is done."""
        await self._delivered()  # one batch in delivery at a time, in order
        if out.empty:  # nothing to acknowledge: its offsets are durable as they are
            self.ledger.delivered(out.offsets)
            self.commits.soon()
        else:
            self._delivering = asyncio.create_task(self._deliver(out))

    async def _deliver(self, out: Outputs) -> bool:
        started = self.clock.monotonic()
        if not await self.delivery.deliver(out):
            self.ledger.give_up()  # at stop: this batch's offsets, and later ones, stay
            return False
        if out.forwarded:
            self.step.forwarded(out.forwarded)
        self.ledger.delivered(out.offsets)
        self.commits.soon()
        if out.records:
            self.metrics.batch_seconds.observe(self.clock.monotonic() - started)
        return True

    async def _delivered(self) -> None:
        """Wait until the batch handed over last is delivered (or given up at stop)."""
        if self._delivering is not None:
            await self._delivering

    def _idle(self) -> bool:
        """Nothing in flight: every partition restored and read to its end, all delivered.

        Read to its end as the last batch's views say: a fetch made while a partition was
        still restoring returns nothing for it, though its records wait to be read.
        """
        delivered = self._delivering is None or self._delivering.done()
        read = all(view.lag == 0 for view in self.step.views)
        return delivered and read and not self._restores and self.joined

    async def _commit(self, partitions: list[Partition] | None = None) -> None:
        """Deliver the batch in hand and what ``partitions`` (all: None) left unsaved; commit.

        For a rebalance or shutdown: the commit waits for the broker's answer. Nothing is
        saved after a batch was given up: its alerts may be lost, and a saved "fired" must
        never stand for one.
        """
        await self._delivered()
        if not self.ledger.halted:
            await self._hand_over(self.step.flush(self.clock.monotonic(), partitions))
            await self._delivered()
        await self.commits.now()

    # -- rebalances -------------------------------------------------------------------

    async def _revoked(self, revoked: list[Partition]) -> None:
        async with self._lock:  # wait for the batch in hand
            await self._commit(revoked)
            for tp in revoked:
                task = self._restores.pop(tp, None)
                if task is not None:
                    task.cancel()  # perhaps before it ran: its progress goes here
                    self._restored.pop(_names([tp])[0], None)
            await self._disown(revoked)
            self.step.revoke(revoked, self.clock.wall())
            self.ledger.forget(revoked)
        log.info("partitions_revoked", extra=fields(partitions=_names(revoked)))

    async def _assigned(self, assigned: list[Partition]) -> None:
        kafka = self.settings.kafka
        async with self._lock:
            for tp in assigned:
                if tp in self.step.partitions:
                    continue
                forward = kafka.repartition and tp[0] == kafka.topic
                restoring = self.state_reader is not None and not forward
                state = self.step.assign(
                    tp,
                    forward=forward,
                    restoring=restoring,
                    now=self.clock.monotonic(),
                    wall=self.clock.wall(),
                )
                if restoring:
                    # not ready from now on, not from the restore's first chunk
                    self._restored[_names([tp])[0]] = "waiting to be read"
                    self.consumer.pause([tp])
                    # a restore run again would read the same records: what it cannot
                    # use it skips, so a failure is a bug, and it stops the daemon
                    self._restores[tp] = self.supervisor.start(
                        "restore",
                        functools.partial(self._restore, tp, state),
                        "stop",
                        partition=_names([tp])[0],
                    )
            self.ledger.own(assigned)
            self.joined = True
        self.metrics.rebalances.inc()
        log.info("partitions_assigned", extra=fields(partitions=_names(assigned)))

    async def _restore(self, tp: Partition, state: PartitionState) -> None:
        """Restore one partition's state, retrying until it works, then let it be read.

        Each interaction goes back to the tracker of the source that published it.
        """
        assert self.state_reader is not None
        self.metrics.restoring.inc()
        try:
            sources: dict[str, SourceState] = {}
            name = _names([tp])[0]
            progress = functools.partial(self._restored.__setitem__, name)
            await restore.restore(
                self.state_reader,
                tp,
                state.tracker,
                self.metrics,
                sources,
                state.tracker_of,
                progress,
            )
            await campaigns.loaded(self._campaigns_read)  # their thresholds before judging
            async with self._lock:
                if self.step.restored(tp, sources, self.clock.wall()):
                    self.consumer.resume([tp])
                    if self.delivery.live:  # it speaks for the stalls fired before now
                        await self.delivery.announce(self.step.alerts_of(tp))
                self._restores.pop(tp, None)
        finally:
            self._restored.pop(_names([tp])[0], None)
            self.metrics.restoring.dec()

    async def _disown(self, partitions: Sequence[Partition]) -> None:
        """Before giving ``partitions`` up: their alerts are no longer this instance's to send.

        Only ids no other partition here still owns are forgotten: one ``alertId`` can be
        owned by several (a mis-keyed interaction's stall, read on two partitions; a silent
        source's alert, once judged per partition).
        """
        if not self.delivery.live:
            return
        gone = {a.alert_id for a in self.delivery.formatted(self._owned(partitions))}
        if gone:
            kept = [tp for tp in self.step.partitions if tp not in partitions]
            gone -= {a.alert_id for a in self.delivery.formatted(self._owned(kept))}
        await self.delivery.forget(gone)

    def _owned(self, partitions: Sequence[Partition]) -> list[AlertEvent]:
        """The firing alerts ``partitions`` own, as the engine's events."""
        return [event for tp in partitions for event in self.step.alerts_of(tp)]

    # -- shutdown and what HTTP shows ---------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _shutdown(self) -> None:
        async with self._lock:
            await self._commit()
            for task in self._restores.values():
                task.cancel()
            await self._disown(list(self.step.partitions))  # the next owners re-announce them
        await self.consumer.stop()  # leaves the group
        await self.producer.stop()
        if self._campaigns is not None:
            await self._campaigns.stop()
        log.info("stopped", extra=fields(partitions=len(self.step.partitions)))

    def _trackers(self) -> list[Tracker]:
        """Every tracker of every owned partition (one per source: see ``PartitionState``)."""
        return [t for p in self.step.partitions.values() for t in p.trackers()]

    def readiness(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        return readiness.problems(
            joined=self.joined,
            now=self.clock.monotonic(),
            last_loop=self.last_loop,
            broker_down_since=self.probe.down_since,
            delivering_since=self.delivery.delivering_since,
            views=self.step.views,
            stuck_after=self.settings.runtime.stuck_after_seconds,
            restores=self._restored,
        )


def _names(partitions: list[Partition]) -> list[str]:
    return [f"{topic}[{partition}]" for topic, partition in sorted(partitions)]
