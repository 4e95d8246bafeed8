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
capped too. No post carries more than ``queue_size`` alerts (nor :data:`MAX_BATCH`):
the re-send walks the active alerts a batch at a time, after whatever is queued, and
skips those that resolved meanwhile. Only ids, stage and campaign go out: no phone
numbers, no names.

The sink follows ownership (:class:`~consumer.daemon.ports.LiveSink`): only the instance
that owns a partition speaks for its alerts. :meth:`AlertmanagerSink.announce` takes on the
firing alerts of a partition just restored (re-sent at once, then kept alive);
:meth:`AlertmanagerSink.forget` drops alerts of a partition given up from the re-sends and
the queue, and returns only once no post that may carry them is in flight: after it,
nothing of them leaves this instance.

Posts go through one pooled :class:`aiohttp.ClientSession` in the daemon's event loop
(kept-alive connections, a timeout per request, no threads), closed on :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge
from yarl import URL

from consumer.backoff import Backoff
from consumer.formats.alerts import AnyAlert, SourceAlert
from consumer.observe.collectors import per_value
from consumer.observe.logs import fields
from consumer.settings.schema import AlertmanagerSettings

log = logging.getLogger(__name__)

# starts a named background task (the daemon's supervisor: logged, counted, restarted)
Spawn = Callable[[str, Callable[[], Awaitable[None]]], "asyncio.Task[None]"]

ALERTNAME: Final = "DialerPreviewStalled"
SOURCE_ALERTNAME: Final = "DialerSourceSilent"
# Alerts in one post at most (fewer if queue_size is smaller): about 600 bytes each, so
# a post stays well under a megabyte however many alerts are active.
MAX_BATCH: Final = 1000
_JSON: Final = {"Content-Type": "application/json"}
_NO_LABELS: Final[Mapping[str, str]] = MappingProxyType({})


class AmAlert(msgspec.Struct, rename="camel", omit_defaults=True):
    """One alert as Alertmanager's API v2 takes it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None = None


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def to_alertmanager(alert: AnyAlert, static: Mapping[str, str] = _NO_LABELS) -> AmAlert:
    """The Alertmanager form of one of our alert records, with ``static`` labels added.

    ``static`` (``alertmanager.labels`` and the ``topic`` read) is what inhibitions match
    with ``equal``: one deployment's alerts never mute another's.
    """
    if isinstance(alert, SourceAlert):
        return _source_silent(alert, static)
    crossed = _parse(alert.stalled_since) + timedelta(seconds=alert.threshold_seconds)
    labels = {
        **static,
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


def _source_silent(alert: SourceAlert, static: Mapping[str, str]) -> AmAlert:
    """A silent source: one alert per topic and source, however many interactions it feeds."""
    crossed = _parse(alert.last_heartbeat_at) + timedelta(seconds=alert.threshold_seconds)
    labels = {
        **static,
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


class AlertmanagerMetrics:
    """The Alertmanager sink's posts, failures, drops and queue, per configured URL."""

    def __init__(
        self,
        registry: CollectorRegistry,
        urls: list[str],
        queued: Callable[[], int],
        active: Callable[[], int],
    ) -> None:
        self.posted = per_value(
            "dialer_alertmanager_alerts_posted",
            "Alerts accepted by an Alertmanager (re-sends included).",
            "url",
            urls,
            registry,
        )
        self.errors = per_value(
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


class AlertmanagerSink:
    """Queues alerts and posts them from a background task; see the module docstring."""

    name = "alertmanager"
    durable = False

    def __init__(
        self, settings: AlertmanagerSettings, registry: CollectorRegistry, topic: str = ""
    ) -> None:
        self.settings = settings
        # on every alert: the topic read (a source alert names its own) and alertmanager.labels
        self._labels = {"topic": topic, **settings.labels} if topic else dict(settings.labels)
        self._batch = min(settings.queue_size, MAX_BATCH)
        # (sequence number, alert id, alert): a post removes exactly what it carried, even
        # when publish dropped the oldest entries, or forget some, while it was in flight
        self._queue: deque[tuple[int, str, AmAlert]] = deque()
        self._sequence = itertools.count()
        self._active: OrderedDict[str, AmAlert] = OrderedDict()
        self._resend: deque[str] = deque()  # alert ids still to re-send in this round
        self._wake = asyncio.Event()
        # held while a post is picked and sent: forget() waits on it for the one in flight
        self._posting = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        # where to post, and how each URL is shown in logs and labels (no credentials)
        self._endpoints = {url: url.rstrip("/") + "/api/v2/alerts" for url in settings.urls}
        self._shown = {url: str(URL(url).with_user(None)) for url in settings.urls}
        self.metrics = AlertmanagerMetrics(
            registry,
            list(self._shown.values()),
            lambda: len(self._queue),
            lambda: len(self._active),
        )

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[asyncio.Future[Any]]:
        """Queue ``alerts`` for posting; never waits for Alertmanager."""
        for alert in alerts:
            converted = to_alertmanager(alert, self._labels)
            if alert.status == "firing":
                self._keep(alert.alert_id, converted)
            else:
                self._active.pop(alert.alert_id, None)
            if len(self._queue) >= self.settings.queue_size:
                self._queue.popleft()
                self.metrics.dropped.inc()
            self._queue.append((next(self._sequence), alert.alert_id, converted))
        if alerts:
            self._wake.set()
        return []

    async def announce(self, alerts: Sequence[AnyAlert]) -> None:
        """Keep ``alerts`` (firing, of a partition just taken on) alive, re-sending them now.

        They go with the re-sends, not through the queue: a partition with many stalls is
        not a flood to drop from.
        """
        for alert in alerts:
            self._keep(alert.alert_id, to_alertmanager(alert, self._labels))
            self._resend.append(alert.alert_id)
        if alerts:
            self._wake.set()

    async def forget(self, alert_ids: Collection[str]) -> None:
        """Send nothing more for ``alert_ids`` (their partition was given up).

        Returns once no post that may carry them is in flight (at most ``timeout_seconds``).
        """
        gone = frozenset(alert_ids)
        for alert_id in gone:
            self._active.pop(alert_id, None)  # what a re-send round still lists is skipped
        self._queue = deque(entry for entry in self._queue if entry[1] not in gone)
        async with self._posting:
            pass

    def _keep(self, alert_id: str, alert: AmAlert) -> None:
        """Keep a firing alert alive (re-sent every round), within ``max_active``."""
        self._active[alert_id] = alert
        while len(self._active) > self.settings.max_active:
            self._active.popitem(last=False)

    def start(self, spawn: Spawn | None = None) -> None:
        """Open the connection pool and start the posting task (through ``spawn``, if given)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        )
        if spawn is None:
            self._task = asyncio.create_task(self._run(), name="alertmanager-sink")
        else:
            self._task = spawn("alertmanager-sink", self._run)

    async def stop(self) -> None:
        """Try once more to post what is queued (bounded by the timeout), then close."""
        if self._task is None or self._session is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._resend.clear()  # re-sends only matter to an Alertmanager we keep talking to
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(), self.settings.timeout_seconds)
        await self._session.close()
        self._task = self._session = None

    async def _run(self) -> None:
        self._wake.set()  # restarted after a failure: post what is queued without waiting
        loop = asyncio.get_running_loop()
        next_resend = loop.time() + self.settings.resend_seconds
        backoff = Backoff(1.0, 60.0)
        while True:
            timeout = max(0.0, next_resend - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if loop.time() >= next_resend:
                # keep them alive in Alertmanager; a round not finished yet starts over
                self._resend = deque(self._active)
                next_resend = loop.time() + self.settings.resend_seconds
            if await self._flush():
                backoff.reset()
            else:
                await asyncio.sleep(backoff.next())  # then retry what is still to post
                self._wake.set()

    async def _flush(self) -> bool:
        """Post the queue, then the re-sends due, a batch at a time; ``False`` on failure.

        Newly queued alerts go before the rest of a re-send round.
        """
        while self._queue or self._resend:
            async with self._posting:  # picked under it: nothing forgotten is picked after
                if not await self._post_next():
                    return False
        return True

    async def _post_next(self) -> bool:
        """Post one batch: of the queue, else of the re-send round; ``False`` on failure."""
        if self._queue:
            batch = list(itertools.islice(self._queue, self._batch))
            if not await self._post([alert for _, _, alert in batch]):
                return False
            last = batch[-1][0]
            while self._queue and self._queue[0][0] <= last:
                self._queue.popleft()
            return True
        ids = [self._resend.popleft() for _ in range(min(self._batch, len(self._resend)))]
        # skipped: resolved since, or forgotten
        still = [self._active[i] for i in ids if i in self._active]
        if still and not await self._post(still):
            self._resend.extendleft(reversed(ids))
            return False
        return True

    async def _post(self, alerts: list[AmAlert]) -> bool:
        """Post ``alerts`` to every URL; ``True`` when one accepted them.

        One member of a cluster is enough: they gossip. The others get them again on
        the next re-send.
        """
        body = msgspec.json.encode(alerts)
        accepted = await asyncio.gather(*(self._post_to(url, body) for url in self._endpoints))
        for url, ok in zip(self._endpoints, accepted, strict=True):
            if ok:
                self.metrics.posted[self._shown[url]].inc(len(alerts))
        return any(accepted)

    async def _post_to(self, url: str, body: bytes) -> bool:
        assert self._session is not None  # posts happen between start and stop
        shown = self._shown[url]
        try:
            async with self._session.post(self._endpoints[url], data=body, headers=_JSON) as answer:
                if answer.status < 300:
                    return True
                error = f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
        self.metrics.errors[shown].inc()
        log.warning("alertmanager_post_failed", extra=fields(url=shown, error=error))
        return False
