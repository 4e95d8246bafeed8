"""Which campaigns the poller watches, proving them over, and how each one's polls fare.

* **Which campaigns.** ``genesys.campaigns`` when given; else every campaign whose
  ``dialingMode`` is ``preview`` and whose ``campaignStatus`` may still have interactions
  (``on``, ``stopping``, ``forced_stopping``), discovered from the paged campaign list.
  Either way the list is read again every ``genesys.discovery_seconds``. A watched
  campaign stays watched until proven over: listed ``off``/``complete``/``forced_off``/
  ``invalid`` by a complete listing, or answering 404 twice in a row (one warning).
  Its interactions then get tombstones.

A campaign whose polls fail is counted (``genesys_poller_campaign_failing{campaign_id,
reason}``) until one succeeds or it is dropped; readiness names it.
"""

from __future__ import annotations

import logging
from collections import Counter

import msgspec

from consumer.errors import (
    BadResponseError,
    LoginRefusedError,
    NotFoundError,
    OutputError,
    PlatformError,
    PlatformUnavailableError,
    RateLimitedError,
)
from consumer.formats.campaigns import BUCKETS, ENDED_STATUSES, LIVE_STATUSES, Campaign
from consumer.genesys.changes import MISSES_BEFORE_TOMBSTONE, Watched
from consumer.genesys.client import PlatformClient
from consumer.genesys.metrics import PollerMetrics
from consumer.genesys.sender import Sender
from consumer.observe.logs import fields
from consumer.settings.genesys import GenesysSettings

# the poller's events keep the logger name operators know them by
log = logging.getLogger("consumer.genesys.poller")


def failure_reason(exc: BaseException) -> str:
    """A bounded name for why a poll failed (a metric label)."""
    if isinstance(exc, NotFoundError):
        return "not_found"
    if isinstance(exc, RateLimitedError):
        return "rate_limited"
    if isinstance(exc, PlatformUnavailableError):
        return "unavailable"
    if isinstance(exc, BadResponseError | msgspec.DecodeError):
        return "bad_answer"
    if isinstance(exc, OutputError):
        return "publish"
    return "refused"  # another 4xx: 403 after a division change, 400...


class WatchList:
    """The campaigns being polled, and those the topic holds interactions of (restored)."""

    def __init__(
        self,
        settings: GenesysSettings,
        client: PlatformClient,
        sender: Sender,
        metrics: PollerMetrics,
    ) -> None:
        self.settings = settings
        self.client = client
        self.sender = sender
        self.metrics = metrics
        self.watched: dict[str, Watched] = {}
        # what the topic says was published before this process, by the campaign that
        # listed it (campaign id -> id -> digest): adopted when the campaign is watched
        self.restored: dict[str, dict[str, bytes]] = {}
        self._listed_at: float | None = None  # when the campaigns were last read
        self.listed = False  # the campaigns were read once
        self._not_found: dict[str, int] = {}  # campaign id -> 404s in a row
        self._deleted: set[str] = set()  # campaigns proven deleted (404 twice): never again

    async def refresh(self, now: float) -> None:
        """Read the campaigns again when due (every round until a read succeeded)."""
        if self._listed_at is not None and now - self._listed_at < self.settings.discovery_seconds:
            return
        if self.settings.campaigns:
            listed = await self._named_campaigns()
        else:
            listed = await self._discovered_campaigns()
        if listed is None:
            return  # keep what we have; try again next round
        self._listed_at, self.listed = now, True
        for campaign in listed.values():
            watched = self.watched.get(campaign.id)
            if watched is None:
                # what the topic holds of it is its own: absent twice, it is tombstoned
                adopted = self.restored.pop(campaign.id, {})
                log.info(
                    "campaign_added", extra=fields(campaign_id=campaign.id, restored=len(adopted))
                )
                self.watched[campaign.id] = Watched(campaign, now, adopted)
            else:
                watched.campaign = campaign
            await self.sender.campaign(campaign)
        self.metrics.campaigns.set(len(self.watched))

    async def _discovered_campaigns(self) -> dict[str, Campaign] | None:
        """The campaigns to watch: the live preview ones, and those watched not proven over."""
        try:
            every = {c.id: c for c in await self.client.campaigns()}
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            log.warning("campaigns_unread", extra=fields(error=str(exc)))
            return None
        wanted = {
            c.id: c for c in every.values() if c.is_preview and c.campaign_status in LIVE_STATUSES
        }
        known = dict.fromkeys([*self.watched, *self.restored])
        for campaign_id in [c for c in known if c not in wanted]:
            listed = every.get(campaign_id)
            if listed is None:  # not in the list: only the campaign's own 404s prove it gone
                listed = await self._read_campaign(campaign_id)
                if listed is None:
                    continue
            if listed.campaign_status in ENDED_STATUSES:
                await self.sender.campaign(listed)  # its settings say why it stopped
                await self.drop(campaign_id, f"campaign_status={listed.campaign_status}")
            else:
                wanted[campaign_id] = listed  # still may have interactions: still watched
        return wanted

    async def _read_campaign(self, campaign_id: str) -> Campaign | None:
        """One campaign's settings; ``None`` when unread or not found (dropped at the second)."""
        try:
            campaign = await self.client.campaign(campaign_id)
        except NotFoundError:
            await self.not_found(campaign_id)
            return None
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            log.warning("campaign_unread", extra=fields(campaign_id=campaign_id, error=str(exc)))
            return None
        self.found(campaign_id)
        return campaign

    async def not_found(self, campaign_id: str) -> None:
        """The campaign answered 404: the second time in a row proves it deleted."""
        self._not_found[campaign_id] = n = self._not_found.get(campaign_id, 0) + 1
        if n < MISSES_BEFORE_TOMBSTONE:
            return
        self._deleted.add(campaign_id)
        log.warning(
            "campaign_not_found",
            extra=fields(campaign_id=campaign_id, action="dropped: no longer polled"),
        )
        await self.drop(campaign_id, "not_found", deleted=True)

    def found(self, campaign_id: str) -> None:
        """The campaign answered: its 404s are no longer in a row."""
        self._not_found.pop(campaign_id, None)

    async def _named_campaigns(self) -> dict[str, Campaign] | None:
        listed: dict[str, Campaign] = {}
        for campaign_id in self.settings.campaigns:
            if campaign_id in self._deleted:
                continue
            campaign = await self._read_campaign(campaign_id)
            known = self.watched.get(campaign_id)
            if campaign is not None:
                listed[campaign_id] = campaign
            elif campaign_id not in self._deleted:  # unread, or a first 404: polled as before
                listed[campaign_id] = known.campaign if known else Campaign(campaign_id)
        for campaign_id in [c for c in self.restored if c not in self.settings.campaigns]:
            # published before, no longer named: tombstoned once proven over, never polled
            campaign = await self._read_campaign(campaign_id)
            if campaign is not None and campaign.campaign_status in ENDED_STATUSES:
                await self.drop(campaign_id, f"campaign_status={campaign.campaign_status}")
        return listed

    async def drop(self, campaign_id: str, reason: str, *, deleted: bool = False) -> None:
        """Stop polling a campaign proven over; its interactions get tombstones."""
        watched = self.watched.pop(campaign_id, None)
        self._not_found.pop(campaign_id, None)
        ended = list(self.restored.pop(campaign_id, {}))
        if watched is not None:
            ended += watched.published
            self.healthy(watched)
        log.info(
            "campaign_dropped",
            extra=fields(campaign_id=campaign_id, reason=reason, tombstones=len(ended)),
        )
        if ended:
            try:
                await self.sender.send([(iid.encode(), None, []) for iid in ended], "tombstone")
            except OutputError as exc:
                log.warning("publish_failed", extra=fields(topic=self.sender.topic, error=str(exc)))
                # kept as unwatched: the next campaign read proves it over again, and retries
                self.restored.setdefault(campaign_id, {}).update(dict.fromkeys(ended, b""))
        if deleted:
            await self.sender.campaign_deleted(campaign_id)
        self.metrics.campaigns.set(len(self.watched))
        self.count_seen()

    def failed(self, watched: Watched, exc: BaseException, result: str = "failed") -> None:
        """Count a failed poll (retried next round); its campaign's state stays as it was."""
        reason = failure_reason(exc)
        if watched.failures and reason != watched.failing:
            self.metrics.campaign_failing.remove(watched.campaign.id, watched.failing)
        watched.failures += 1
        watched.failing, watched.error = reason, str(exc)
        self.metrics.campaign_failing.labels(watched.campaign.id, reason).set(watched.failures)
        self.metrics.polls.labels(result).inc()
        log.warning(
            "poll_failed",
            extra=fields(
                campaign_id=watched.campaign.id,
                reason=reason,
                failures=watched.failures,
                error=str(exc),
            ),
        )

    def healthy(self, watched: Watched) -> None:
        """The campaign no longer fails (polled, or dropped): its failing series goes."""
        if watched.failures:
            self.metrics.campaign_failing.remove(watched.campaign.id, watched.failing)
        watched.failures, watched.failing, watched.error = 0, "", ""

    def count_seen(self) -> None:
        """The interactions the last polls of the watched campaigns saw, by list (gauges)."""
        totals: Counter[str] = Counter()
        for watched in self.watched.values():
            totals.update(watched.seen)
        for bucket in BUCKETS:
            self.metrics.interactions.labels(bucket).set(totals[bucket])
