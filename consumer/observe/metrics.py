"""Metrics on an injected registry: counters fed once per batch, gauges at scrape.

Counters and histograms are fed from :class:`~consumer.engine.observations.Observations` by
:meth:`EngineMetrics.record`, once per batch, through cached label children; the stage
latency histogram, observed for most records, counts in plain lists instead
(:class:`_LatencyHistogram`). Gauges that describe the current state (interactions per
stage, stalled previews and interactions waiting in the API's pending list per campaign)
are computed when Prometheus scrapes, from the
trackers themselves, so they cannot drift.

Label values are bounded: stages, outcomes and reasons are fixed sets, dialing modes map
to a fixed set, and campaigns are capped: the first ``max_campaign_labels`` campaigns seen
keep their id as label, later ones share ``other``, and so does an id that would read as
one of the label's own values (``other``, ``none``) or is longer than
``MAX_CAMPAIGN_LABEL_LENGTH``. Interaction, agent and contact ids never become labels.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from consumer.engine import buckets
from consumer.engine.alerting import REMOVALS
from consumer.engine.limits import Budget
from consumer.engine.model import INVALID_REASONS
from consumer.engine.observations import (
    OUTCOMES,
    SHED_REASONS,
    SHED_STALLS,
    Observations,
    pending_by_campaign,
)
from consumer.engine.stages import STAGES
from consumer.engine.tracker import Tracker
from consumer.formats import changelog
from consumer.formats.campaigns import BUCKETS, UNREADABLE_REASONS

_M = TypeVar("_M", bound=MetricWrapperBase)

OVERFLOW_CAMPAIGN: Final = "other"
NO_CAMPAIGN: Final = "none"
# A campaign id equal to a value the label reserves would merge with that series, and a
# very long one would bloat every scrape: both are counted under OVERFLOW_CAMPAIGN.
_RESERVED_CAMPAIGNS: Final = frozenset({OVERFLOW_CAMPAIGN, NO_CAMPAIGN})
MAX_CAMPAIGN_LABEL_LENGTH: Final = 64
# skipped-record reasons beyond the decoders' own: a saved interaction the tracker refused
# (its times cannot be timed), a campaign record whose applying raised
STATE_REFUSED: Final = "refused"
CAMPAIGN_FAILED: Final = "failed"
# Stage latencies span agent think time (seconds to minutes) and talk time (up to hours).
LATENCY_BUCKETS: Final = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class CampaignLabels:
    """Maps campaign ids to a bounded set of label values."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, campaign_id: str | None) -> str:
        """The label for ``campaign_id``: itself while under the cap and safe, else ``other``.

        No id (or an empty one, which Prometheus would read as no label) is ``none``.
        """
        if not campaign_id:
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
        self._pending_seen: set[str] = set()

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
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
            GaugeMetricFamily(
                "dialer_pending_interactions",
                "Interactions in the API's pending list (waiting for a free agent or line), "
                "by campaign: a backlog, not stalls.",
                labels=["campaign"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        interactions, stalled, pending = self._families()
        per_stage = [0] * len(STAGES)
        per_campaign: Tally[tuple[str, str]] = Tally()
        waiting: dict[str | None, int] = {}  # campaign id -> interactions pending
        for tracker in self._trackers():
            for stage in STAGES:
                per_stage[stage] += tracker.stage_counts[stage]
            states = tracker.states
            for iid, fired in tracker.stalled.items():
                campaign = self._campaigns(states[iid].campaign)
                per_campaign[fired.stall.stage.label, campaign] += 1
            pending_by_campaign(states, waiting)
        backlog: Tally[str] = Tally()
        for campaign_id, n in waiting.items():
            backlog[self._campaigns(campaign_id)] += n
        for stage in STAGES:
            interactions.add_metric([stage.label], per_stage[stage])
        # series that were non-zero once stay, at zero, so graphs and rules see the drop
        self._stalled_seen.update(per_campaign)
        for key in sorted(self._stalled_seen):
            stalled.add_metric(list(key), per_campaign[key])
        self._pending_seen.update(backlog)
        for campaign in sorted(self._pending_seen):
            pending.add_metric([campaign], backlog[campaign])
        yield interactions
        yield stalled
        yield pending


class _PlainHistogram(Collector):
    """A histogram counted in plain lists and exposed at scrape time.

    A batch's observations are counted in one compiled call (:mod:`consumer.engine.buckets`),
    where a prometheus-client ``Histogram`` takes a lock for its sum and for its bucket on
    each one: a few per cent of the daemon's time when it observes most records at tens
    of thousands a second. The daemon observes and scrapes in one thread, so no lock is
    needed.
    """

    def __init__(
        self, name: str, documentation: str, labels: list[str], bounds: tuple[float, ...]
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._bounds = [float(bound) for bound in bounds]
        # the "le" of each bucket, as prometheus-client writes it
        self._le = (*(repr(bound) for bound in self._bounds), "+Inf")
        # label values -> observations per bucket (not cumulative), then their sum
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], values: list[float]) -> None:
        """Count the observations ``values`` for ``labels``."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self._le) + 1)
        buckets.count(series, self._bounds, values)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._documentation, labels=self._labels)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, series in sorted(self._series.items()):
            buckets, total = [], 0.0
            for le, count in zip(self._le, series, strict=False):
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
        budget: Budget | None = None,
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
        self.latency = _PlainHistogram(
            "dialer_stage_latency_seconds",
            "Time between two stages of the same call, from the snapshots' own times.",
            ["transition", "dialing_mode"],
            LATENCY_BUCKETS,
        )
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
        self.shed = Counter(
            "dialer_interactions_shed",
            "Interactions shed to make room (also counted as evicted), by reason: cap (a "
            "partition's tracking.max_interactions), budget (the process's memory budget); "
            "and by their stall: fired (resolved as evicted), pending (running), none.",
            ["reason", "stall"],
            registry=registry,
        )
        tracked = Gauge(
            "dialer_tracked_interactions",
            "Interactions tracked now by the whole process (all partitions).",
            registry=registry,
        )
        tracked.set_function(lambda: sum(len(tracker) for tracker in trackers()))
        if budget is not None:  # no container limit and none set: no budget, no series
            limit = Gauge(
                "dialer_tracking_budget_interactions",
                "Interactions the process's memory budget holds (tracking.memory_limit_bytes, "
                "or derived from the container's memory limit).",
                registry=registry,
            )
            limit.set(budget.interactions)
        registry.register(_StateCollector(trackers, self.campaigns))
        # Known label values exist from the start, so rate() sees the first increment.
        for outcome in OUTCOMES:
            self.events.labels(outcome)
        for reason in REMOVALS:
            self.removed.labels(reason)
        for stage in STAGES:
            self.stall_alerts.labels(stage.label)
        for cause in SHED_REASONS:
            for stall in SHED_STALLS:
                self.shed.labels(cause, stall)
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
        for labels, seconds in obs.latencies.items():
            self.latency.observe(labels, seconds)
        for stage, n in obs.firings.items():
            self._child(self.stall_alerts, stage).inc(n)
        for reason, n in obs.removals.items():
            self._child(self.removed, reason).inc(n)
        for (why, stall), n in obs.shed.items():
            self._child(self.shed, why, stall).inc(n)


class PartitionView(Protocol):
    """What the consumer-health gauges read of one assigned partition at scrape time."""

    @property
    def topic(self) -> str:
        """The partition's topic."""

    @property
    def partition(self) -> int:
        """The partition number."""

    @property
    def lag(self) -> int | None:
        """End offset minus next offset, when both are known."""

    @property
    def event_time_lag(self) -> float | None:
        """Wall clock minus the newest record timestamp read."""

    @property
    def caught_up(self) -> bool:
        """Judged on the wall clock (not a backlog on event time)."""

    @property
    def heartbeat(self) -> float | None:
        """The up-to time its heartbeat sources vouch for, on a partition with heartbeats."""


class BatchCounts(Protocol):
    """What :meth:`ConsumerMetrics.record` reads of one batch step's outputs."""

    records: int
    heartbeats: int
    heartbeats_ignored: dict[str, int]
    misrouted: int
    future: dict[tuple[str, int], int]
    applied_delays: list[float]


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
        self.state_skipped = _per_value(
            "dialer_state_records_skipped",
            "Changelog records skipped on restore (the rest restored), by reason.",
            "reason",
            (*changelog.REASONS, STATE_REFUSED),
            registry,
        )
        self.campaign_skipped = _per_value(
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
        self.heartbeats_ignored = _per_value(
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
        self.record_delay = _PlainHistogram(
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

    def record(self, out: BatchCounts) -> None:
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


def _per_value(
    name: str, documentation: str, label: str, values: Iterable[str], registry: CollectorRegistry
) -> dict[str, Counter]:
    """A counter with one label whose values are known up front: each child made once."""
    counter = Counter(name, documentation, [label], registry=registry)
    return {value: counter.labels(value) for value in values}


class AlertmanagerMetrics:
    """The Alertmanager sink's posts, failures, drops and queue, per configured URL."""

    def __init__(
        self,
        registry: CollectorRegistry,
        urls: list[str],
        queued: Callable[[], int],
        active: Callable[[], int],
    ) -> None:
        self.posted = _per_value(
            "dialer_alertmanager_alerts_posted",
            "Alerts accepted by an Alertmanager (re-sends included).",
            "url",
            urls,
            registry,
        )
        self.errors = _per_value(
            "dialer_alertmanager_errors",
            "Failed posts to an Alertmanager (each is retried).",
            "url",
            urls,
            registry,
        )
        self.dropped = Counter(
            "dialer_alertmanager_dropped",
            "Alerts dropped because the queue to Alertmanager was full.",
            registry=registry,
        )
        Gauge(
            "dialer_alertmanager_queue", "Alerts waiting to be posted.", registry=registry
        ).set_function(queued)
        Gauge(
            "dialer_alertmanager_active",
            "Firing alerts this instance keeps alive in Alertmanager (those of its partitions).",
            registry=registry,
        ).set_function(active)


HTTP_REJECTIONS: Final = (
    "deadline",  # the request (and its answer) took longer than http.request_timeout_seconds
    "evicted",  # closed at the connection cap to make room for a new connection
    "refused",  # a new connection at the cap, every open one busy being answered
    "request_line_too_long",
    "headers_too_large",
    "bad_request",
)


class HttpMetrics:
    """The HTTP port: open connections, and connections or requests it turned away."""

    def __init__(self, registry: CollectorRegistry, connections: Callable[[], int]) -> None:
        self.rejected = _per_value(
            "dialer_http_rejected",
            "Connections or requests the HTTP port closed or refused, by reason.",
            "reason",
            HTTP_REJECTIONS,
            registry,
        )
        Gauge(
            "dialer_http_connections", "Open connections to the HTTP port.", registry=registry
        ).set_function(connections)


class PollerMetrics:
    """The Genesys Cloud poller's metrics (``interaction-consumer poll``) on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "genesys_poller_requests",
            "Platform API requests, by endpoint (token, campaigns, campaign, interactions) and "
            "HTTP status (error: no answer).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.poll_seconds = Histogram(
            "genesys_poller_poll_duration_seconds",
            "Time to poll one campaign's interactions and publish what changed.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.polls = Counter(
            "genesys_poller_polls",
            "Campaign polls, by result: ok, failed (retried next round), incomplete (an answer "
            "without the lists or that does not decode: no absence counted), not_found "
            "(dropped at the second in a row).",
            ["result"],
            registry=registry,
        )
        self.budget_used = Gauge(
            "genesys_poller_rate_budget_used",
            "Platform API requests sent in the last 60 seconds.",
            registry=registry,
        )
        self.budget_limit = Gauge(
            "genesys_poller_rate_budget_limit",
            "Platform API requests allowed in any 60 seconds (genesys.requests_per_minute).",
            registry=registry,
        )
        self.backoffs = Counter(
            "genesys_poller_backoffs",
            "Pauses before retrying, by cause: rate_limited (429), unavailable (5xx, network).",
            ["cause"],
            registry=registry,
        )
        self.interactions = Gauge(
            "genesys_poller_interactions",
            "Interactions in the latest successful poll of every campaign, by list.",
            ["bucket"],
            registry=registry,
        )
        self.invalid = Counter(
            "genesys_poller_invalid_interactions",
            "Interactions skipped: not an object, no id to key them by, or larger than "
            "kafka.max_record_bytes.",
            registry=registry,
        )
        self.published = Counter(
            "genesys_poller_records_published",
            "Records published, by kind: snapshot (a changed interaction), tombstone (absent "
            "from two polls), campaign (changed campaign settings).",
            ["kind"],
            registry=registry,
        )
        self.heartbeats = Counter(
            "genesys_poller_heartbeats",
            "Heartbeat records sent (one per partition after each successful round).",
            registry=registry,
        )
        self.token_renewals = Counter(
            "genesys_poller_token_renewals",
            "Access tokens obtained, by reason: start, expiry (renewed before it ran out), "
            "unauthorized (the API answered 401).",
            ["reason"],
            registry=registry,
        )
        self.login_refusals = Counter(
            "genesys_poller_login_refusals",
            "Token requests the login endpoint refused (bad client id or secret).",
            registry=registry,
        )
        self.campaigns = Gauge(
            "genesys_poller_campaigns", "Campaigns being polled.", registry=registry
        )
        self.campaign_failing = Gauge(
            "genesys_poller_campaign_failing",
            "Polls of a campaign failed in a row, by campaign id and why the last failed "
            "(refused: 403 and other 4xx, not_found, unavailable, rate_limited, bad_answer, "
            "publish); present only while it fails. Its heartbeats vouch no further meanwhile.",
            ["campaign_id", "reason"],
            registry=registry,
        )
        self.round_seconds = Gauge(
            "genesys_poller_round_seconds",
            "How long the last round took (the heartbeats' intervalSeconds is at least this).",
            registry=registry,
        )
        self.budget_short = Gauge(
            "genesys_poller_budget_short",
            "1 when genesys.requests_per_minute cannot poll every campaign within "
            "genesys.interval_seconds (rounds overrun the interval).",
            registry=registry,
        )
        for bucket in BUCKETS:
            self.interactions.labels(bucket)
        for kind in ("snapshot", "tombstone", "campaign"):
            self.published.labels(kind)
        for result in ("ok", "failed", "incomplete", "not_found"):
            self.polls.labels(result)
        for reason in ("start", "expiry", "unauthorized"):
            self.token_renewals.labels(reason)
        for cause in ("rate_limited", "unavailable"):
            self.backoffs.labels(cause)
