"""The daemon's own health as metrics: lag, commits, rebalances, batches, outputs.

Counters are fed once per batch from the step's :class:`~consumer.daemon.outputs.Outputs`
(:meth:`ConsumerMetrics.record`) and by the loop, delivery, commits, restore and the
campaigns follower as things happen; per-partition health and source liveness are
computed when Prometheus scrapes, from the step's
:class:`~consumer.daemon.partition.PartitionView` of each assigned partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.daemon.outputs import Outputs
from consumer.daemon.partition import PartitionView
from consumer.engine.model import INVALID_REASONS
from consumer.formats import changelog
from consumer.formats.campaigns import UNREADABLE_REASONS
from consumer.observe.collectors import PlainHistogram, per_value

# skipped-record reasons beyond the decoders' own: a saved interaction the tracker refused
# (its times cannot be timed), a campaign record whose applying raised
STATE_REFUSED: Final = "refused"
CAMPAIGN_FAILED: Final = "failed"


class _PartitionCollector(Collector):
    """Per-partition consumer health and source liveness, computed at scrape time."""

    def __init__(
        self,
        partitions: Callable[[], Iterable[PartitionView]],
        silent: Callable[[], dict[str, int]],
        wall: Callable[[], float],
    ) -> None:
        self._partitions = partitions
        self._silent = silent
        self._wall = wall

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        labels = ["topic", "partition"]
        return (
            GaugeMetricFamily(
                "dialer_consumer_lag",
                "Records not yet consumed: end offset minus next offset to read.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "dialer_event_time_lag_seconds",
                "Wall clock minus the newest record timestamp read (lag, or producer skew).",
                labels=labels,
            ),
            GaugeMetricFamily(
                "dialer_partition_caught_up",
                "1 when the partition is caught up and judged on the wall clock, "
                "0 while it reads a backlog on event time.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "dialer_source_heartbeat_age_seconds",
                "Wall clock minus the up-to time the partition's heartbeat sources vouch for "
                "(the oldest of their newest heartbeats), on partitions that have heartbeats.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "dialer_source_silent",
                "Heartbeat sources silent for longer than runtime.source_silent_seconds.",
                labels=["topic"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        lag, event_lag, caught_up, heartbeat_age, silent = self._families()
        wall = self._wall()
        for view in self._partitions():
            labels = [view.topic, str(view.partition)]
            if view.lag is not None:
                lag.add_metric(labels, view.lag)
            if view.event_time_lag is not None:
                event_lag.add_metric(labels, view.event_time_lag)
            caught_up.add_metric(labels, 1 if view.caught_up else 0)
            if view.heartbeat is not None:
                heartbeat_age.add_metric(labels, max(0.0, wall - view.heartbeat))
        for topic, count in sorted(self._silent().items()):
            silent.add_metric([topic], count)
        yield from (lag, event_lag, caught_up, heartbeat_age, silent)


class ConsumerMetrics:
    """The daemon's own health: lag, commits, rebalances, batches, outputs."""

    def __init__(
        self,
        registry: CollectorRegistry,
        partitions: Callable[[], Iterable[PartitionView]],
        silent: Callable[[], dict[str, int]] = dict,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.dead_letters = Counter(
            "dialer_dead_letters",
            "Invalid records produced to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.alerts_published = Counter(
            "dialer_alerts_published",
            "Alerts handed to each sink, by status.",
            ["sink", "status"],
            registry=registry,
        )
        self.output_errors = Counter(
            "dialer_output_errors",
            "Failed attempts to make a batch's outputs durable (each is retried).",
            registry=registry,
        )
        self.rebalances = Counter(
            "dialer_rebalances", "Partition assignments received from the group.", registry=registry
        )
        self.commits = Counter(
            "dialer_commits", "Offset commits, by result.", ["result"], registry=registry
        )
        self.last_commit = Gauge(
            "dialer_last_commit_timestamp_seconds",
            "Wall-clock time of the last successful offset commit.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "dialer_batch_duration_seconds",
            "Time to process one fetched batch: decode, track, deliver outputs, commit.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.batch_records = Histogram(
            "dialer_batch_records",
            "Records per fetched batch.",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=registry,
        )
        self.state_writes = Counter(
            "dialer_state_writes",
            "Records written to the state changelog (saved interactions and tombstones).",
            registry=registry,
        )
        self.restore_records = Counter(
            "dialer_state_restore_records",
            "Changelog records read while restoring state.",
            registry=registry,
        )
        self.state_skipped = per_value(
            "dialer_state_records_skipped",
            "Changelog records skipped on restore (the rest restored), by reason.",
            "reason",
            (*changelog.REASONS, STATE_REFUSED),
            registry,
        )
        self.campaign_skipped = per_value(
            "dialer_campaign_records_skipped",
            "Campaigns-topic records skipped by the follower (the rest applied), by reason.",
            "reason",
            (*UNREADABLE_REASONS, CAMPAIGN_FAILED),
            registry,
        )
        self.task_failures = Counter(
            "dialer_task_failures",
            "Background tasks that ended with an error (each restarted, or the daemon stopped).",
            ["task"],
            registry=registry,
        )
        self.restore_seconds = Histogram(
            "dialer_state_restore_seconds",
            "Time to restore one partition's state.",
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.restoring = Gauge(
            "dialer_state_restoring_partitions",
            "Partitions whose state is being restored (not processed meanwhile).",
            registry=registry,
        )
        self.misrouted = Counter(
            "dialer_misrouted_records",
            "Snapshots whose record key is not their interaction id (bad producer keying).",
            registry=registry,
        )
        self.future_timestamps = Counter(
            "dialer_future_timestamps",
            "Records whose timestamp, or whose snapshot's times, lie further ahead of the "
            "wall clock than runtime.max_clock_skew_seconds (applied, their time not believed).",
            ["topic", "partition"],
            registry=registry,
        )
        self.heartbeats = Counter(
            "dialer_heartbeats", "Heartbeat records read from sources.", registry=registry
        )
        self.heartbeats_ignored = per_value(
            "dialer_heartbeats_ignored",
            "Heartbeat records not believed: intervalSeconds outside 0.1 s - 1 h (interval), "
            "from a source in runtime.retired_sources (retired), or from a new source on a "
            "partition that has 32 already (too_many_sources).",
            "reason",
            ("interval", "retired", "too_many_sources"),
            registry,
        )
        self.alert_delay = Histogram(
            "dialer_stall_alert_delay_seconds",
            "From a stall coming due (its start plus threshold) to its firing alert being "
            "acknowledged by every durable output; on a heartbeat partition it includes the "
            "wait for the source to vouch for the due time (up to one heartbeat interval).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.record_delay = PlainHistogram(
            "dialer_record_delay_seconds",
            "From a record's timestamp to its snapshot being applied to the tracked state.",
            [],
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
        )
        registry.register(self.record_delay)
        for reason in INVALID_REASONS:
            self.dead_letters.labels(reason)
        for result in ("ok", "failed"):
            self.commits.labels(result)
        registry.register(_PartitionCollector(partitions, silent, wall))

    def record(self, out: Outputs) -> None:
        """Count what one batch step saw (its deliveries are counted when acknowledged)."""
        if out.records:
            self.batch_records.observe(out.records)
        if out.heartbeats:
            self.heartbeats.inc(out.heartbeats)
        for reason, n in out.heartbeats_ignored.items():
            self.heartbeats_ignored[reason].inc(n)
        if out.misrouted:
            self.misrouted.inc(out.misrouted)
        for (topic, partition), n in out.future.items():
            self.future_timestamps.labels(topic, str(partition)).inc(n)
        if out.applied_delays:
            self.record_delay.observe((), out.applied_delays)
