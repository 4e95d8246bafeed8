"""The Alertmanager sink: an alert's API v2 form, its posts, and its bounds.

Posts go to a real aiohttp server of the test's own, which can hold or refuse them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.engine.stalls import StallPolicy
from consumer.formats.alerts import Alert, to_alert
from consumer.settings.schema import AlertmanagerSettings
from consumer.sinks.alertmanager import ALERTNAME, AlertmanagerSink, to_alertmanager
from tests.machine import free_port
from tests.unit.am_double import alertmanager
from tests.unit.factory import T0, snap, tracker


def stalled_alert() -> tuple[Alert, Alert]:
    """A firing alert and its resolution from a real tracker."""
    t = tracker(StallPolicy({"previewing": 100}))
    t.ingest(snap(previewing=0), T0)
    (firing,) = t.tick(T0 + 150)
    (resolved,) = t.ingest(snap(previewing=0, placed=190), T0 + 200)
    return to_alert(firing), to_alert(resolved)


def firings(count: int) -> list[Alert]:
    """``count`` firing alerts of distinct interactions, ``i-0`` onwards."""
    t = tracker(StallPolicy({"previewing": 100}))
    for n in range(count):
        t.ingest(snap(f"i-{n}", previewing=0), T0)
    alerts = [to_alert(event) for event in t.tick(T0 + 150)]
    assert len(alerts) == count
    return sorted(alerts, key=lambda a: int(a.interaction_id[2:]))


def posted(registry: CollectorRegistry, url: str) -> float | None:
    """Alerts counted as accepted by ``url``."""
    return registry.get_sample_value("dialer_alertmanager_alerts_posted_total", {"url": url})


def test_posted_count_is_the_alerts_the_server_received() -> None:
    """Every alert reaches Alertmanager, and the count is of alerts, not of posts or bytes."""
    registry = CollectorRegistry()

    async def scenario() -> tuple[int, float | None]:
        async with alertmanager() as fake:
            sink = AlertmanagerSink(AlertmanagerSettings(urls=[fake.url]), registry)
            sink.start()
            alerts = firings(5)
            await sink.publish(alerts[:2])
            await sink.publish(alerts[2:])
            await fake.until({a.interaction_id for a in alerts})
            await sink.stop()
            return sum(len(post) for post in fake.posts), posted(registry, fake.url)

    received, counted = asyncio.run(scenario())
    assert received == 5
    assert counted == received


def test_resend_keeps_every_post_within_queue_size() -> None:
    """The re-send brings back alerts the full queue dropped, in posts of queue_size at most."""
    registry = CollectorRegistry()
    alerts = firings(10)

    async def scenario() -> list[int]:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], queue_size=3, resend_seconds=0.2)
            sink = AlertmanagerSink(settings, registry)
            await sink.publish(alerts)  # before the task starts: 7 dropped, 3 queued
            sink.start()
            await fake.until({a.interaction_id for a in alerts})
            await sink.stop()
            return [len(post) for post in fake.posts]

    sizes = asyncio.run(scenario())
    assert registry.get_sample_value("dialer_alertmanager_dropped_total") == 7
    assert max(sizes) <= 3
    assert sum(sizes) >= 10


def test_alerts_queued_during_a_post_are_not_lost_when_older_ones_drop() -> None:
    """A post in flight while publish overflows the queue removes only what it carried."""
    registry = CollectorRegistry()
    alerts = firings(5)

    async def scenario() -> None:
        async with alertmanager() as fake:
            # no re-send during the test: it would hide a loss
            settings = AlertmanagerSettings(urls=[fake.url], queue_size=3, resend_seconds=3600)
            sink = AlertmanagerSink(settings, registry)
            sink.start()
            fake.open.clear()
            await sink.publish(alerts[:1])
            await asyncio.wait_for(fake.arrived.wait(), 20)  # i-0 is in flight, held
            await sink.publish(alerts[1:])  # queue of 3: i-0 and i-1 dropped
            fake.open.set()
            await fake.until({"i-2", "i-3", "i-4"})
            await sink.stop()

    asyncio.run(scenario())
    assert registry.get_sample_value("dialer_alertmanager_dropped_total") == 2


def test_a_hung_alertmanager_times_out_and_is_counted() -> None:
    """A post Alertmanager never answers ends at timeout_seconds as an error; stop still ends."""
    registry = CollectorRegistry()

    async def scenario() -> str:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], timeout_seconds=0.3)
            sink = AlertmanagerSink(settings, registry)
            sink.start()
            fake.open.clear()
            await sink.publish(firings(1))
            async with asyncio.timeout(20):
                while not registry.get_sample_value(
                    "dialer_alertmanager_errors_total", {"url": fake.url}
                ):
                    await asyncio.sleep(0.02)
            await sink.stop()
            return fake.url

    url = asyncio.run(scenario())
    assert posted(registry, url) == 0


def test_credentials_in_a_url_stay_out_of_labels() -> None:
    """A URL with user and password is labelled and logged without them."""
    registry = CollectorRegistry()
    AlertmanagerSink(AlertmanagerSettings(urls=["http://am:s3cret@am-0:9093"]), registry)
    assert posted(registry, "http://am-0:9093") == 0
    assert not any(
        "s3cret" in str(sample.labels) for family in registry.collect() for sample in family.samples
    )


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


def test_announced_alerts_are_posted_at_once_as_they_fired() -> None:
    """A partition taken on: its firing alerts go out now, not a re-send later, unchanged."""
    registry = CollectorRegistry()
    alerts = firings(2)

    async def scenario() -> list[dict[str, Any]]:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], resend_seconds=3600)
            sink = AlertmanagerSink(settings, registry)
            sink.start()
            await sink.announce(alerts)
            await fake.until({"i-0", "i-1"})
            await sink.stop()
            return [alert for post in fake.posts for alert in post]

    received = asyncio.run(scenario())
    assert sorted((a["annotations"]["alert_id"], a["startsAt"]) for a in received) == sorted(
        (a.alert_id, to_alertmanager(a).starts_at) for a in alerts
    )
    assert all("endsAt" not in a for a in received)
    assert registry.get_sample_value("dialer_alertmanager_active") == 2


def test_forgotten_alerts_are_not_re_sent() -> None:
    """After forget, the re-sends go on for the other alerts and never carry the forgotten."""
    registry = CollectorRegistry()
    alerts = firings(3)

    async def scenario() -> tuple[int, set[str]]:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], resend_seconds=0.05)
            sink = AlertmanagerSink(settings, registry)
            sink.start()
            await sink.publish(alerts)
            await fake.until({"i-0", "i-1", "i-2"})
            await sink.forget([alerts[1].alert_id])
            mark = len(fake.posts)
            async with asyncio.timeout(20):
                while fake.times_posted("i-0", since=mark) < 3:  # three re-send rounds
                    await asyncio.sleep(0.02)
            await sink.stop()
            return fake.times_posted("i-2", since=mark), fake.interactions(since=mark)

    others, after = asyncio.run(scenario())
    assert others >= 3
    assert "i-1" not in after
    assert registry.get_sample_value("dialer_alertmanager_active") == 2


def test_forget_waits_for_the_post_in_flight_and_drops_what_is_queued() -> None:
    """Forgetting returns once no post that may carry them is in flight; queued ones never go."""
    registry = CollectorRegistry()
    alerts = firings(3)

    async def scenario() -> set[str]:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], resend_seconds=3600)
            sink = AlertmanagerSink(settings, registry)
            sink.start()
            fake.open.clear()
            await sink.publish(alerts[:1])
            await asyncio.wait_for(fake.arrived.wait(), 20)  # i-0 is in flight, held
            await sink.publish(alerts[1:])  # i-1 and i-2 wait in the queue
            forgetting = asyncio.create_task(sink.forget([a.alert_id for a in alerts[:2]]))
            await asyncio.sleep(0.1)
            assert not forgetting.done()  # i-0 may still land: forget must not return yet
            fake.open.set()
            await asyncio.wait_for(forgetting, 20)
            await fake.until({"i-2"})
            await sink.stop()
            return fake.interactions()

    assert asyncio.run(scenario()) == {"i-0", "i-2"}
    assert registry.get_sample_value("dialer_alertmanager_queue") == 0
