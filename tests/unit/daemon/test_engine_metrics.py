"""Engine metrics: values read back from an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from consumer.daemon.engine_metrics import MAX_CAMPAIGN_LABEL_LENGTH, CampaignLabels, EngineMetrics
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from tests.unit.factory import T0, snap, tracker


def wired(t: Tracker, max_campaigns: int = 10) -> tuple[CollectorRegistry, EngineMetrics]:
    """A fresh registry with engine metrics reading ``t``."""
    registry = CollectorRegistry()
    return registry, EngineMetrics(registry, lambda: [t], max_campaigns)


def test_counters_follow_observations() -> None:
    """Events, transitions, latencies, alerts and removals land in their metrics."""
    t = tracker(StallPolicy({"placed": 10}))
    registry, metrics = wired(t)
    t.ingest(snap(created=0, previewing=2, placed=12), T0 + 12)
    t.ingest(snap(created=0, previewing=2, placed=12), T0 + 13)
    t.tick(T0 + 30)
    t.ingest(snap(active=False, created=0, previewing=2, placed=12, wrapped_up=40), T0 + 40)
    metrics.record(t.obs.drain())
    value = registry.get_sample_value
    assert value("dialer_events_total", {"outcome": "applied"}) == 2
    assert value("dialer_events_total", {"outcome": "duplicate"}) == 1
    assert value("dialer_events_total", {"outcome": "invalid"}) == 0
    labels = {"stage": "placed", "dialing_mode": "preview"}
    assert value("dialer_stage_transitions_total", labels) == 1
    latency = {"transition": "previewing_to_placed", "dialing_mode": "preview"}
    assert value("dialer_stage_latency_seconds_sum", latency) == 10
    assert value("dialer_stage_latency_seconds_count", latency) == 1
    buckets = {
        le: value("dialer_stage_latency_seconds_bucket", {**latency, "le": le})
        for le in ("5.0", "10.0", "+Inf")
    }
    assert buckets == {"5.0": 0, "10.0": 1, "+Inf": 1}  # cumulative; le includes the bound
    assert value("dialer_stall_alerts_total", {"stage": "placed"}) == 1
    assert value("dialer_interactions_removed_total", {"reason": "wrapped_up"}) == 1
    metrics.record(t.obs.drain())  # nothing new: nothing counted twice
    assert value("dialer_events_total", {"outcome": "applied"}) == 2


def test_gauges_are_read_at_scrape_time() -> None:
    """Interactions per stage and stalled per campaign reflect the tracker when scraped."""
    t = tracker()
    registry, _ = wired(t)
    t.ingest(snap("a", campaign="c-1", previewing=0), T0)
    t.ingest(snap("b", campaign="c-2", placed=0), T0)
    t.tick(T0 + 301)
    value = registry.get_sample_value
    assert value("dialer_interactions", {"stage": "previewing"}) == 1
    assert value("dialer_interactions", {"stage": "placed"}) == 1
    assert value("dialer_preview_stalled", {"stage": "previewing", "campaign": "c-1"}) == 1
    assert value("dialer_preview_stalled", {"stage": "placed", "campaign": "c-2"}) == 1
    t.ingest(snap("a", campaign="c-1", previewing=0, placed=302), T0 + 302)
    # a series that was non-zero stays, at zero, so rules see the stall clear
    assert value("dialer_preview_stalled", {"stage": "previewing", "campaign": "c-1"}) == 0


def test_campaign_labels_are_capped() -> None:
    """Past the cap, new campaigns share the label ``other``; known ones keep theirs."""
    labels = CampaignLabels(2)
    assert [labels(c) for c in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "none"]


def test_reserved_and_overlong_campaign_ids_map_to_other() -> None:
    """Ids spelled like the label's own values or over 64 characters share ``other``, unkept."""
    labels = CampaignLabels(3)
    longest, too_long = "c" * MAX_CAMPAIGN_LABEL_LENGTH, "c" * (MAX_CAMPAIGN_LABEL_LENGTH + 1)
    got = [labels(c) for c in ("none", "other", too_long, longest, "a", "b", "none", None)]
    assert got == ["other", "other", "other", longest, "a", "b", "other", "none"]
    assert labels("c") == "other"  # the three kept are the safe ones: the cap is reached
    assert labels("") == "none"  # Prometheus would read an empty value as no label at all


def test_stalled_gauge_uses_capped_campaign_labels() -> None:
    """Stalls of campaigns past the cap are summed under ``other``."""
    t = tracker()
    registry, _ = wired(t, max_campaigns=1)
    for n in range(3):
        t.ingest(snap(f"i-{n}", campaign=f"c-{n}", previewing=0), T0)
    t.tick(T0 + 301)
    value = registry.get_sample_value
    assert value("dialer_preview_stalled", {"stage": "previewing", "campaign": "c-0"}) == 1
    assert value("dialer_preview_stalled", {"stage": "previewing", "campaign": "other"}) == 2
