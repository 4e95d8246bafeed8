"""The Alertmanager sink: per-interaction stalls posted to Alertmanager's API v2.

Each firing stall becomes an Alertmanager alert (``POST /api/v2/alerts``) labelled
``alertname="DialerPreviewStalled"`` with the campaign, stage, rule and interaction id
(an interaction id is fine as an Alertmanager label: it names the alert, it does not
multiply time series). ``startsAt`` is when the stall crossed its threshold; a resolved
stall is posted once more with ``endsAt``. Alertmanager forgets an alert that is not
re-sent within its ``resolve_timeout``, so active alerts are re-sent every
``resend_seconds``. Every configured URL (the members of a cluster) gets every post.

Best effort, by design: the sink is not durable, never blocks consumption, and never
grows without bound. Alerts wait in a bounded queue; when it is full the oldest are
dropped and counted; posts are retried with back-off; the set of active alerts is
capped too. Only ids, stage and campaign go out: no phone numbers, no names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from consumer.adapters.alerts import AnyAlert, SourceAlert
from consumer.adapters.logs import fields
from consumer.config import AlertmanagerSettings

log = logging.getLogger(__name__)

ALERTNAME: Final = "DialerPreviewStalled"
SOURCE_ALERTNAME: Final = "DialerSourceSilent"


class AmAlert(msgspec.Struct, rename="camel", omit_defaults=True):
    """One alert as Alertmanager's API v2 takes it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None = None


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def to_alertmanager(alert: AnyAlert) -> AmAlert:
    """The Alertmanager form of one of our alert records."""
    if isinstance(alert, SourceAlert):
        return _source_silent(alert)
    crossed = _parse(alert.stalled_since) + timedelta(seconds=alert.threshold_seconds)
    labels = {
        "alertname": ALERTNAME,
        "severity": "warning",
        "campaign": alert.campaign_id or "none",
        "stage": alert.stage,
        "rule": alert.rule,
        "interaction_id": alert.interaction_id,
    }
    where = alert.campaign_name or alert.campaign_id or "no campaign"
    annotations = {
        "summary": f"Preview interaction stalled in {alert.stage} ({where})",
        "description": (
            f"Interaction {alert.interaction_id} of campaign {where} has been in stage "
            f"{alert.stage} (rule {alert.rule}) for over {alert.threshold_seconds:.0f}s "
            f"since {alert.stalled_since}; agent {alert.agent_id or 'unknown'}, "
            f"queue {alert.queue_id or 'unknown'}."
        ),
        "alert_id": alert.alert_id,
    }
    ends = alert.observed_at if alert.status == "resolved" else None
    return AmAlert(labels, annotations, crossed.isoformat().replace("+00:00", "Z"), ends)


def _source_silent(alert: SourceAlert) -> AmAlert:
    """A silent source: one alert per topic and source, however many interactions it feeds."""
    crossed = _parse(alert.last_heartbeat_at) + timedelta(seconds=alert.threshold_seconds)
    labels = {
        "alertname": SOURCE_ALERTNAME,
        "severity": "critical",
        "topic": alert.topic,
        "source": alert.source_id,
    }
    annotations = {
        "summary": f"No heartbeat from source {alert.source_id} on {alert.topic}",
        "description": (
            f"Source {alert.source_id} has sent no heartbeat on topic {alert.topic} since "
            f"{alert.last_heartbeat_at}: the feed is down, and stalls are not judged past it."
        ),
        "alert_id": alert.alert_id,
    }
    ends = alert.observed_at if alert.status == "resolved" else None
    return AmAlert(labels, annotations, crossed.isoformat().replace("+00:00", "Z"), ends)


class AlertmanagerSink:
    """Queues alerts and posts them from a background task; see the module docstring."""

    name = "alertmanager"
    durable = False

    def __init__(self, settings: AlertmanagerSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self._queue: deque[AmAlert] = deque()
        self._active: OrderedDict[str, AmAlert] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.posted = Counter(
            "dialer_alertmanager_alerts_posted",
            "Alerts accepted by an Alertmanager (re-sends included).",
            ["url"],
            registry=registry,
        )
        self.errors = Counter(
            "dialer_alertmanager_errors",
            "Failed posts to an Alertmanager (each is retried).",
            ["url"],
            registry=registry,
        )
        self.dropped = Counter(
            "dialer_alertmanager_dropped",
            "Alerts dropped because the queue to Alertmanager was full.",
            registry=registry,
        )
        self.queued = Gauge(
            "dialer_alertmanager_queue", "Alerts waiting to be posted.", registry=registry
        )
        self.queued.set_function(lambda: len(self._queue))

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[asyncio.Future[Any]]:
        """Queue ``alerts`` for posting; never waits for Alertmanager."""
        for alert in alerts:
            converted = to_alertmanager(alert)
            if alert.status == "firing":
                self._active[alert.alert_id] = converted
                while len(self._active) > self.settings.max_active:
                    self._active.popitem(last=False)
            else:
                self._active.pop(alert.alert_id, None)
            if len(self._queue) >= self.settings.queue_size:
                self._queue.popleft()
                self.dropped.inc()
            self._queue.append(converted)
        if alerts:
            self._wake.set()
        return []

    def start(self) -> None:
        """Start the posting task."""
        self._task = asyncio.create_task(self._run(), name="alertmanager-sink")

    async def stop(self) -> None:
        """Try once more to post what is queued (bounded by the timeout), then stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(), self.settings.timeout_seconds)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_resend = loop.time() + self.settings.resend_seconds
        delay = 1.0
        while True:
            timeout = max(0.0, next_resend - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if loop.time() >= next_resend:
                self._queue.extend(self._active.values())  # keep them alive in Alertmanager
                next_resend = loop.time() + self.settings.resend_seconds
            if await self._flush():
                delay = 1.0
            else:
                await asyncio.sleep(delay)  # back off, then retry what is still queued
                delay = min(delay * 2, 60.0)
                self._wake.set()

    async def _flush(self) -> bool:
        """Post the queue to every URL; ``True`` when all accepted it."""
        if not self._queue:
            return True
        batch = list(self._queue)
        body = msgspec.json.encode(batch)
        results = await asyncio.gather(*(self._post(url, body) for url in self.settings.urls))
        if any(results):
            # one member of the cluster is enough: they gossip. The rest retry on resend.
            for _ in batch:
                self._queue.popleft()
            return all(results)
        return False

    async def _post(self, url: str, body: bytes) -> bool:
        endpoint = url.rstrip("/") + "/api/v2/alerts"
        request = urllib.request.Request(  # noqa: S310 - the URL scheme comes from settings
            endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            await asyncio.to_thread(
                urllib.request.urlopen,
                request,
                timeout=self.settings.timeout_seconds,
            )
        except OSError as exc:
            self.errors.labels(url).inc()
            log.warning("alertmanager_post_failed", extra=fields(url=url, error=str(exc)))
            return False
        self.posted.labels(url).inc(body.count(b'"startsAt"'))
        return True
