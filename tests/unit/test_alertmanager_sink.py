"""The Alertmanager sink: the API v2 form of an alert, and its bounds when nobody listens."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from consumer.adapters.alertmanager import ALERTNAME, AlertmanagerSink, to_alertmanager
from consumer.adapters.alerts import Alert, to_alert
from consumer.config import AlertmanagerSettings
from consumer.engine.stalls import StallPolicy
from tests.integration.harness import free_port
from tests.unit.factory import T0, snap, tracker


def stalled_alert() -> tuple[Alert, Alert]:
    """A firing alert and its resolution from a real tracker."""
    t = tracker(StallPolicy({"previewing": 100}))
    t.ingest(snap(previewing=0), T0)
    (firing,) = t.tick(T0 + 150)
    (resolved,) = t.ingest(snap(previewing=0, placed=190), T0 + 200)
    return to_alert(firing), to_alert(resolved)


def test_alert_labels_annotations_and_times() -> None:
    """Labels identify the stall; startsAt is the threshold crossing; resolved has endsAt."""
    firing, resolved = stalled_alert()
    am = to_alertmanager(firing)
    assert am.labels == {
        "alertname": ALERTNAME,
        "severity": "warning",
        "campaign": "c-1",
        "stage": "previewing",
        "rule": "previewing",
        "interaction_id": "i-1",
    }
    assert am.starts_at == "2026-11-25T09:48:20Z"
    assert am.ends_at is None
    assert "i-1" in am.annotations["description"]
    assert to_alertmanager(resolved).ends_at == "2026-11-25T09:50:00.000Z"


def test_unreachable_alertmanager_drops_oldest_and_never_blocks() -> None:
    """With nobody listening, publish returns at once, the queue stays bounded, drops count."""
    firing, _ = stalled_alert()
    registry = CollectorRegistry()
    settings = AlertmanagerSettings(
        urls=[f"http://127.0.0.1:{free_port()}"], queue_size=3, timeout_seconds=0.5
    )
    sink = AlertmanagerSink(settings, registry)

    async def flood() -> None:
        sink.start()
        for _ in range(10):
            assert await sink.publish([firing]) == []
        await asyncio.sleep(0.3)
        await sink.stop()

    asyncio.run(flood())
    assert registry.get_sample_value("dialer_alertmanager_dropped_total") == 7
    assert registry.get_sample_value("dialer_alertmanager_queue") == 3
    errors = registry.get_sample_value(
        "dialer_alertmanager_errors_total", {"url": settings.urls[0]}
    )
    assert errors is not None
    assert errors >= 1
