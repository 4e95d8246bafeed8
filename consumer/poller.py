"""The poller: Genesys Cloud's outbound interactions into the topic (``interaction-consumer poll``).

Genesys Cloud publishes ``CampaignInteraction`` through one door only, ``GET
/api/v2/outbound/campaigns/{id}/interactions``: a list of every current interaction of
one campaign in five buckets. The :class:`Poller` turns those answers into the topic
the daemon reads. The rules, in one place:

* **Which campaigns.** ``genesys.campaigns`` when given; else every campaign whose
  ``dialingMode`` is ``preview`` and whose ``campaignStatus`` is ``on`` or ``stopping``,
  discovered from the paged campaign list. Either way the list is read again every
  ``genesys.discovery_seconds``. A campaign answering 404 is dropped with one warning.
* **When.** Rounds of ``genesys.interval_seconds``: every campaign is polled once a
  round, the polls spread evenly over it, each request within the client's budget
  (:mod:`consumer.adapters.genesys`). A round that overruns (a slow API, a back-off)
  is followed by the next at once.
* **What is published.** Each interaction of the five lists, keyed by its ``id``, as
  the exact bytes the API returned for it (decoded as ``msgspec.Raw``: no field renamed,
  dropped or re-formatted), with ``campaign`` added from the answer's own ``campaign``
  when the object has none; only when those bytes differ from what was last published
  for the id (an entry that is not an object, has no id or is larger than
  ``kafka.max_record_bytes`` is skipped and counted). Headers: ``genesys.bucket``
  (which list) and ``genesys.polled.at`` (when the poll began, ISO-8601 UTC). An
  interaction absent from two consecutive successful polls of its campaign gets a
  tombstone (one miss may be the API's own hiccup); so do those of a campaign that is
  dropped. Nothing of an interaction is remembered but a
  16-byte digest of what was published and its miss count.
* **Campaign settings** go to ``<topic>.campaigns`` (compacted, keyed by campaign id;
  format in :mod:`consumer.engine.campaigns`) whenever they change; a deleted campaign
  gets a tombstone there too.
* **Heartbeats.** After a round in which at least one poll succeeded (or, with no
  campaign to poll, the campaign list was read), one heartbeat on every partition,
  vouching up to when the oldest successful poll of the round began: everything the
  dialer showed before that moment is published. A refused login or a round in which
  every poll failed sends none, so the daemon reports the source silent instead of
  stalls.
* **Stopping.** :meth:`Poller.stop` (SIGTERM) lets the round in hand finish, without
  waiting between its remaining polls nor backing off (a failing poll fails at once),
  then :meth:`Poller.run` returns.

Publishing goes through :class:`~consumer.adapters.producing.Publisher`; a record is
counted as published once acknowledged, and a poll whose records were not acknowledged
counts as failed and is published again next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import msgspec

from consumer.adapters.genesys import Clock, PlatformClient
from consumer.adapters.logs import fields
from consumer.adapters.producing import Publisher, send_heartbeats
from consumer.config import Settings
from consumer.engine import campaigns as campaign_records
from consumer.engine.answer import Probe, answer_decoder, present, probe_decoder, with_campaign
from consumer.engine.campaigns import BUCKETS, LIVE_STATUSES, Campaign
from consumer.engine.model import BUCKET_HEADER, iso
from consumer.errors import (
    LoginRefusedError,
    NotFoundError,
    OutputError,
    PlatformError,
)
from consumer.metrics import PollerMetrics

log = logging.getLogger(__name__)

POLLED_AT_HEADER: Final = "genesys.polled.at"
MISSES_BEFORE_TOMBSTONE: Final = 2


@dataclass
class _Watched:
    """One campaign being polled, and what was published of its interactions."""

    campaign: Campaign
    published: dict[str, bytes] = field(default_factory=dict)  # id -> digest of the value
    misses: dict[str, int] = field(default_factory=dict)  # id -> successful polls absent
    last_ok: bool | None = None  # None: not polled yet
    seen: Counter[str] = field(default_factory=Counter)  # bucket -> interactions, last poll


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


class Poller:
    """Polls the campaigns' interactions into ``kafka.topic``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        client: PlatformClient,
        publisher: Publisher,
        metrics: PollerMetrics,
        clock: Clock,
    ) -> None:
        self.settings = settings.genesys
        self.topic = settings.kafka.topic
        self.max_value_bytes = settings.kafka.max_record_bytes
        self.campaigns_topic = campaign_records.topic_for(self.topic)
        self.client = client
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self.watched: dict[str, _Watched] = {}
        self._campaign_values: dict[str, bytes] = {}  # campaign id -> last record published
        self._listed_at: float | None = None  # when the campaigns were last read
        self._listed_ok = False
        self._stopping = asyncio.Event()
        self.rounds = 0

    # -- operating -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the round in hand (without back-off pauses), then return from :meth:`run`."""
        self._stopping.set()
        self.client.hurry()

    def readiness(self) -> list[str]:
        """Why the poller is not ready (empty: ready)."""
        problems = []
        if not self.client.has_token:
            problems.append("no access token")
        polled = [w.last_ok for w in self.watched.values() if w.last_ok is not None]
        if polled and not any(polled):
            problems.append("the last poll of every campaign failed")
        return problems

    async def run(self, rounds: int | None = None) -> None:
        """Poll round after round until stopped (or ``rounds`` rounds, for tests).

        Raises :class:`~consumer.errors.LoginRefusedError` when the login is refused.
        """
        while not self._stopping.is_set() and (rounds is None or self.rounds < rounds):
            began = self.clock.time()
            await self.round()
            await self._pause_until(began + self.settings.interval_seconds)

    async def round(self) -> bool:
        """Poll every campaign once; heartbeats if any poll succeeded. Returns that."""
        self.rounds += 1
        await self._refresh_campaigns()
        began = self.clock.time()
        ids = list(self.watched)
        spacing = self.settings.interval_seconds / max(1, len(ids))
        oldest: float | None = None
        for n, campaign_id in enumerate(ids):
            await self._pause_until(began + n * spacing)
            started = await self._poll(campaign_id)
            if started is not None and (oldest is None or started < oldest):
                oldest = started
        if not ids and self._listed_ok:
            oldest = began  # nothing to poll, and the campaign list says so
        if oldest is None:
            log.warning("round_failed", extra=fields(campaigns=len(ids)))
            return False
        await self._heartbeat(oldest)
        return True

    # -- campaigns -------------------------------------------------------------------------

    async def _refresh_campaigns(self) -> None:
        """Read the campaigns again when due (every round until a read succeeded)."""
        now = self.clock.time()
        if self._listed_at is not None and now - self._listed_at < self.settings.discovery_seconds:
            return
        if self.settings.campaigns:
            listed = await self._named_campaigns()
        else:
            listed = await self._discovered_campaigns()
        if listed is None:
            return  # keep what we have; try again next round
        self._listed_at, self._listed_ok = now, True
        for campaign_id in [c for c in self.watched if c not in listed]:
            log.info("campaign_dropped", extra=fields(campaign_id=campaign_id))
            await self._drop(campaign_id)
        for campaign in listed.values():
            watched = self.watched.get(campaign.id)
            if watched is None:
                log.info("campaign_added", extra=fields(campaign_id=campaign.id))
                self.watched[campaign.id] = _Watched(campaign)
            else:
                watched.campaign = campaign
            await self._publish_campaign(campaign)
        self.metrics.campaigns.set(len(self.watched))

    async def _discovered_campaigns(self) -> dict[str, Campaign] | None:
        try:
            every = await self.client.campaigns()
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            log.warning("campaigns_unread", extra=fields(error=str(exc)))
            return None
        wanted = [c for c in every if c.is_preview and c.campaign_status in LIVE_STATUSES]
        for campaign in every:  # a polled campaign that stopped: its settings say why
            if campaign.id in self.watched and campaign not in wanted:
                await self._publish_campaign(campaign)
        return {c.id: c for c in wanted}

    async def _named_campaigns(self) -> dict[str, Campaign] | None:
        listed: dict[str, Campaign] = {}
        for campaign_id in self.settings.campaigns:
            if campaign_id not in self.watched and self._listed_ok:
                continue  # dropped earlier (404)
            try:
                listed[campaign_id] = await self.client.campaign(campaign_id)
            except NotFoundError:
                self._warn_gone(campaign_id)
                await self._drop(campaign_id, deleted=True)
            except LoginRefusedError:
                raise
            except PlatformError as exc:
                log.warning(
                    "campaign_unread", extra=fields(campaign_id=campaign_id, error=str(exc))
                )
                known = self.watched.get(campaign_id)
                listed[campaign_id] = known.campaign if known else Campaign(campaign_id)
        return listed

    def _warn_gone(self, campaign_id: str) -> None:
        log.warning(
            "campaign_not_found",
            extra=fields(campaign_id=campaign_id, action="dropped: no longer polled"),
        )

    async def _publish_campaign(self, campaign: Campaign) -> None:
        value = campaign_records.encode(campaign)
        if self._campaign_values.get(campaign.id) == value:
            return
        try:
            ack = await self.publisher.send(self.campaigns_topic, campaign.id.encode(), value)
            await self.publisher.confirm([ack])
        except OutputError as exc:
            log.warning("publish_failed", extra=fields(topic=self.campaigns_topic, error=str(exc)))
            return  # published again at the next read of the campaigns
        self._campaign_values[campaign.id] = value
        self.metrics.published.labels("campaign").inc()

    async def _drop(self, campaign_id: str, *, deleted: bool = False) -> None:
        """Stop polling a campaign; its interactions, no longer visible, get tombstones."""
        watched = self.watched.pop(campaign_id, None)
        if watched is not None and watched.published:
            await self._send([(iid.encode(), None, []) for iid in watched.published], "tombstone")
        if deleted and campaign_id in self._campaign_values:
            try:
                ack = await self.publisher.send(self.campaigns_topic, campaign_id.encode(), None)
                await self.publisher.confirm([ack])
                del self._campaign_values[campaign_id]
            except OutputError as exc:
                log.warning(
                    "publish_failed", extra=fields(topic=self.campaigns_topic, error=str(exc))
                )
        self.metrics.campaigns.set(len(self.watched))
        self._count_seen()

    # -- polling one campaign --------------------------------------------------------------

    async def _poll(self, campaign_id: str) -> float | None:
        """Poll one campaign and publish what changed; when it began, or ``None`` if it failed."""
        watched = self.watched[campaign_id]
        started = self.clock.time()
        try:
            body = await self.client.interactions(campaign_id)
            answer = answer_decoder.decode(body)
        except NotFoundError:
            self.metrics.polls.labels("not_found").inc()
            self._warn_gone(campaign_id)
            await self._drop(campaign_id, deleted=True)
            return None
        except LoginRefusedError:
            raise
        except (PlatformError, msgspec.DecodeError) as exc:
            self._failed(watched, str(exc))
            return None
        campaign_ref = (
            bytes(answer.campaign)
            if present(answer.campaign)
            else msgspec.json.encode({"id": campaign_id, "name": watched.campaign.name})
        )
        polled_at = iso(started).encode()
        current: dict[str, bytes] = {}  # id -> digest of what the poll shows
        changes: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]] = []
        seen: Counter[str] = Counter()
        invalid = 0
        for bucket, interactions in answer.lists():
            for raw in interactions:
                try:
                    probe = probe_decoder.decode(raw)
                except msgspec.DecodeError:
                    probe = Probe()  # not an object, or an id that is not a string
                if probe.id is None or probe.id in current:
                    invalid += probe.id is None
                    continue
                value = bytes(raw)
                if not present(probe.campaign):
                    value = with_campaign(value, campaign_ref)
                if len(value) > self.max_value_bytes:
                    # the broker would refuse it, failing the whole campaign every round
                    invalid += 1
                    continue
                seen[bucket] += 1
                digest = current[probe.id] = _digest(value)
                if watched.published.get(probe.id) != digest:
                    headers = [(BUCKET_HEADER, bucket.encode()), (POLLED_AT_HEADER, polled_at)]
                    changes.append((probe.id.encode(), value, headers))
        misses = {
            iid: watched.misses.get(iid, 0) + 1 for iid in watched.published if iid not in current
        }
        gone = [iid for iid, n in misses.items() if n >= MISSES_BEFORE_TOMBSTONE]
        try:
            await self._send(changes, "snapshot")
            await self._send([(iid.encode(), None, []) for iid in gone], "tombstone")
        except OutputError as exc:
            self._failed(watched, str(exc))
            return None
        for key, _, _ in changes:
            iid = key.decode()
            watched.published[iid] = current[iid]
        for iid in gone:
            del watched.published[iid]
            del misses[iid]
        watched.misses = misses
        watched.last_ok, watched.seen = True, seen
        if invalid:
            self.metrics.invalid.inc(invalid)
            log.warning(
                "interactions_invalid", extra=fields(campaign_id=campaign_id, count=invalid)
            )
        self.metrics.polls.labels("ok").inc()
        self.metrics.poll_seconds.observe(self.clock.time() - started)
        self._count_seen()
        return started

    def _failed(self, watched: _Watched, error: str) -> None:
        """Count a failed poll (retried next round); its campaign's state stays as it was."""
        watched.last_ok = False
        self.metrics.polls.labels("failed").inc()
        log.warning("poll_failed", extra=fields(campaign_id=watched.campaign.id, error=error))

    def _count_seen(self) -> None:
        totals: Counter[str] = Counter()
        for watched in self.watched.values():
            totals.update(watched.seen)
        for bucket in BUCKETS:
            self.metrics.interactions.labels(bucket).set(totals[bucket])

    async def _send(
        self, records: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]], kind: str
    ) -> None:
        """Publish (key, value, headers) records and wait until all are acknowledged."""
        if not records:
            return
        acks = [
            await self.publisher.send(self.topic, key, value, headers)
            for key, value, headers in records
        ]
        await self.publisher.confirm(acks)
        self.metrics.published.labels(kind).inc(len(records))

    async def _heartbeat(self, up_to: float) -> None:
        try:
            sent = await send_heartbeats(
                self.publisher,
                self.topic,
                self.settings.source_id,
                up_to,
                self.settings.interval_seconds,
            )
        except OutputError as exc:
            log.warning("heartbeat_failed", extra=fields(error=str(exc)))
            return
        self.metrics.heartbeats.inc(sent)

    async def _pause_until(self, moment: float) -> None:
        """Wait until ``moment``, or less once stopping (the round in hand then hurries)."""
        delay = moment - self.clock.time()
        if delay <= 0 or self._stopping.is_set():
            return
        sleeping = asyncio.ensure_future(self.clock.sleep(delay))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([sleeping, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeping, stopping):
            task.cancel()
        await asyncio.gather(sleeping, stopping, return_exceptions=True)
