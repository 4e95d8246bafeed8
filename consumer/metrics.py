"""Metrics on an injected registry: counters fed once per batch, gauges at scrape.

Counters and histograms are fed from :class:`~consumer.engine.tracker.Observations` by
:meth:`EngineMetrics.record`, once per batch, through cached label children; the stage
latency histogram, observed for most records, counts in plain lists instead
(:class:`_LatencyHistogram`). Gauges that describe the current state (interactions per
stage, stalled previews per campaign) are computed when Prometheus scrapes, from the
trackers themselves, so they cannot drift.

Label values are bounded: stages, outcomes and reasons are fixed sets, dialing modes map
to a fixed set, and campaigns are capped: the first ``max_campaign_labels`` campaigns seen
keep their id as label, later ones share ``other``, and so does an id that would read as
one of the label's own values (``other``, ``none``) or is longer than
``MAX_CAMPAIGN_LABEL_LENGTH``. Interaction, agent and contact ids never become labels.
"""

from __future__ import annotations

import bisect
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Final, NamedTuple, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from consumer.engine.lifecycle import STAGES
from consumer.engine.model import INVALID_REASONS
from consumer.engine.tracker import Observations, Tracker

_M = TypeVar("_M", bound=MetricWrapperBase)

OUTCOMES: Final = ("applied", "duplicate", "late", "ended", "tombstone", "invalid")
REMOVAL_REASONS: Final = (
    "tombstone",
    "wrapped_up",
    "conversation_ended",
    "expired",
    "evicted",
)
OVERFLOW_CAMPAIGN: Final = "other"
NO_CAMPAIGN: Final = "none"
# A campaign id equal to a value the label reserves would merge with that series, and a
# very long one would bloat every scrape: both are counted under OVERFLOW_CAMPAIGN.
_RESERVED_CAMPAIGNS: Final = frozenset({OVERFLOW_CAMPAIGN, NO_CAMPAIGN})
MAX_CAMPAIGN_LABEL_LENGTH: Final = 64
# Stage latencies span agent think time (seconds to minutes) and talk time (up to hours).
LATENCY_BUCKETS: Final = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class CampaignLabels:
    """Maps campaign ids to a bounded set of label values."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, campaign_id: str | None) -> str:
        """The label for ``campaign_id``: itself while under the cap and safe, else ``other``."""
        if campaign_id is None:
            return NO_CAMPAIGN
        if campaign_id in self._known:
            return campaign_id
        if (
            len(self._known) < self.limit
            and len(campaign_id) <= MAX_CAMPAIGN_LABEL_LENGTH
            and campaign_id not in _RESERVED_CAMPAIGNS
        ):
            self._known.add(campaign_id)
            return campaign_id
        return OVERFLOW_CAMPAIGN


class _StateCollector(Collector):
    """Gauges read from the trackers at scrape time."""

    def __init__(
        self, trackers: Callable[[], Iterable[Tracker]], campaigns: CampaignLabels
    ) -> None:
        self._trackers = trackers
        self._campaigns = campaigns
        self._stalled_seen: set[tuple[str, str]] = set()

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "dialer_interactions",
                "Interactions tracked now, by lifecycle stage.",
                labels=["stage"],
            ),
            GaugeMetricFamily(
                "dialer_preview_stalled",
                "Interactions stalled now, by stage and campaign.",
                labels=["stage", "campaign"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        interactions, stalled = self._families()
        per_stage = [0] * len(STAGES)
        per_campaign: Tally[tuple[str, str]] = Tally()
        for tracker in self._trackers():
            for stage in STAGES:
                per_stage[stage] += tracker.stage_counts[stage]
            for alert, _ in tracker.stalled.values():
                per_campaign[alert.stage, self._campaigns(alert.campaign_id)] += 1
        for stage in STAGES:
            interactions.add_metric([stage.label], per_stage[stage])
        # series that were non-zero once stay, at zero, so graphs and rules see the drop
        self._stalled_seen.update(per_campaign)
        for key in sorted(self._stalled_seen):
            stalled.add_metric(list(key), per_campaign[key])
        yield interactions
        yield stalled


class _LatencyHistogram(Collector):
    """``dialer_stage_latency_seconds``: a histogram by transition and dialing mode.

    Counted in plain lists, exposed at scrape time: an observation is a bisection and two
    additions, where a prometheus-client ``Histogram`` takes a lock for its sum and for
    its bucket, a few per cent of the daemon's time at tens of thousands of records a
    second. The daemon observes and scrapes in one thread, so no lock is needed.
    """

    # the "le" of each bucket, as prometheus-client writes it
    _LE: Final = (*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf")

    def __init__(self) -> None:
        # (transition, mode) -> observations per bucket (not cumulative), then their sum
        self._series: dict[tuple[str, str], list[float]] = {}

    def observe(self, transition: str, mode: str, seconds: float) -> None:
        """Count one duration of ``transition`` in ``mode``."""
        series = self._series.get((transition, mode))
        if series is None:
            series = self._series[transition, mode] = [0.0] * (len(self._LE) + 1)
        series[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: bound >= seconds
        series[-1] += seconds

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            "dialer_stage_latency_seconds",
            "Time between two stages of the same call, from the snapshots' own times.",
            labels=["transition", "dialing_mode"],
        )

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, series in sorted(self._series.items()):
            buckets, total = [], 0.0
            for le, count in zip(self._LE, series, strict=False):
                total += count
                buckets.append((le, total))
            family.add_metric(list(labels), buckets, sum_value=series[-1])
        yield family


class EngineMetrics:
    """The engine's metrics, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        trackers: Callable[[], Iterable[Tracker]],
        max_campaign_labels: int,
    ) -> None:
        self.campaigns = CampaignLabels(max_campaign_labels)
        self.events = Counter(
            "dialer_events",
            "Records consumed, by outcome: applied (taught something new), duplicate, "
            "late (older than what is known), ended (echo of an ended interaction), "
            "tombstone, invalid.",
            ["outcome"],
            registry=registry,
        )
        self.transitions = Counter(
            "dialer_stage_transitions",
            "Stages reached by interactions (each stage of a call counts once).",
            ["stage", "dialing_mode"],
            registry=registry,
        )
        self.latency = _LatencyHistogram()
        registry.register(self.latency)
        self.stall_alerts = Counter(
            "dialer_stall_alerts",
            "Stall alerts fired, by the stage the interaction stalled in.",
            ["stage"],
            registry=registry,
        )
        self.removed = Counter(
            "dialer_interactions_removed",
            "Interactions that left the tracker, by reason.",
            ["reason"],
            registry=registry,
        )
        registry.register(_StateCollector(trackers, self.campaigns))
        # Known label values exist from the start, so rate() sees the first increment.
        for outcome in OUTCOMES:
            self.events.labels(outcome)
        for reason in REMOVAL_REASONS:
            self.removed.labels(reason)
        for stage in STAGES:
            self.stall_alerts.labels(stage.label)
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}

    def _child(self, metric: _M, *labels: str) -> _M:
        """``metric.labels(*labels)``, cached: the lookup is the costly part per batch."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child  # type: ignore[return-value]

    def record(self, obs: Observations) -> None:
        """Add one batch of observations (drained from the trackers) to the metrics."""
        for outcome, n in obs.events.items():
            self._child(self.events, outcome).inc(n)
        for (stage, mode), n in obs.transitions.items():
            self._child(self.transitions, stage, mode).inc(n)
        for name, mode, seconds in obs.latencies:
            self.latency.observe(name, mode, seconds)
        for stage, n in obs.firings.items():
            self._child(self.stall_alerts, stage).inc(n)
        for reason, n in obs.removals.items():
            self._child(self.removed, reason).inc(n)


class PartitionView(NamedTuple):
    """What the consumer-health gauges read of one assigned partition at scrape time."""

    topic: str
    partition: int
    lag: int | None
    event_time_lag: float | None
    caught_up: bool


class _PartitionCollector(Collector):
    """Per-partition consumer health, computed at scrape time."""

    def __init__(self, partitions: Callable[[], Iterable[PartitionView]]) -> None:
        self._partitions = partitions

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
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
        )

    def collect(self) -> Iterator[Metric]:
        lag, event_lag, caught_up = self._families()
        for view in self._partitions():
            labels = [view.topic, str(view.partition)]
            if view.lag is not None:
                lag.add_metric(labels, view.lag)
            if view.event_time_lag is not None:
                event_lag.add_metric(labels, view.event_time_lag)
            caught_up.add_metric(labels, 1 if view.caught_up else 0)
        yield from (lag, event_lag, caught_up)


class ConsumerMetrics:
    """The daemon's own health: lag, commits, rebalances, batches, outputs."""

    def __init__(
        self, registry: CollectorRegistry, partitions: Callable[[], Iterable[PartitionView]]
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
        self.state_unreadable = Counter(
            "dialer_state_unreadable_records",
            "Changelog values that could not be read on restore (skipped).",
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
        for reason in INVALID_REASONS:
            self.dead_letters.labels(reason)
        for result in ("ok", "failed"):
            self.commits.labels(result)
        registry.register(_PartitionCollector(partitions))
