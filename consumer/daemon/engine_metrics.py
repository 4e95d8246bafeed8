"""The tracker's state and observations as metrics, on an injected registry.

Counters and histograms are fed from :class:`~consumer.engine.observations.Observations` by
:meth:`EngineMetrics.record`, once per batch, through cached label children; the stage
latency histogram, observed for most records, counts in plain lists instead
(:class:`~consumer.observe.collectors.PlainHistogram`). Gauges that describe the current
state (interactions per stage, stalled previews and interactions waiting in the API's
pending list per campaign) are computed when Prometheus scrapes, from the
trackers themselves, so they cannot drift. The daemon's loop and offline replay both
keep them.

Campaigns are capped: the first ``max_campaign_labels`` campaigns seen keep their id as
label, later ones share ``other``, and so does an id that would read as one of the label's
own values (``other``, ``none``) or is longer than ``MAX_CAMPAIGN_LABEL_LENGTH``.
Interaction, agent and contact ids never become labels.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from consumer.engine.alerting import REMOVALS
from consumer.engine.limits import Budget
from consumer.engine.observations import (
    OUTCOMES,
    SHED_REASONS,
    SHED_STALLS,
    Observations,
    pending_by_campaign,
)
from consumer.engine.stages import STAGES
from consumer.engine.tracker import Tracker
from consumer.observe.collectors import PlainHistogram

_M = TypeVar("_M", bound=MetricWrapperBase)

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
        self.latency = PlainHistogram(
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
