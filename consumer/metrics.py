"""Engine metrics on an injected registry: counters fed once per batch, gauges at scrape.

Counters and histograms are fed from :class:`~consumer.tracker.Observations` by
:meth:`EngineMetrics.record`, once per batch, through cached label children. Gauges that
describe the current state (interactions per stage, stalled previews per campaign) are
computed when Prometheus scrapes, from the trackers themselves, so they cannot drift.

Label values are bounded: stages, outcomes and reasons are fixed sets, dialing modes map
to a fixed set, and campaigns are capped: the first ``max_campaign_labels`` campaigns seen
keep their id as label, later ones share ``other``. Interaction, agent and contact ids
never become labels.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from consumer.lifecycle import STAGES
from consumer.tracker import Observations, Tracker

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
# Stage latencies span agent think time (seconds to minutes) and talk time (up to hours).
LATENCY_BUCKETS: Final = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class CampaignLabels:
    """Maps campaign ids to a bounded set of label values."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, campaign_id: str | None) -> str:
        """The label for ``campaign_id``: itself while under the cap, else ``other``."""
        if campaign_id is None:
            return NO_CAMPAIGN
        if campaign_id in self._known:
            return campaign_id
        if len(self._known) < self.limit:
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
        self.latency = Histogram(
            "dialer_stage_latency_seconds",
            "Time between two stages of the same call, from the snapshots' own times.",
            ["transition", "dialing_mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
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
            self._child(self.latency, name, mode).observe(seconds)
        for stage, n in obs.firings.items():
            self._child(self.stall_alerts, stage).inc(n)
        for reason, n in obs.removals.items():
            self._child(self.removed, reason).inc(n)
