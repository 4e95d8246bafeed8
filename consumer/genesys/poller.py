"""The poller: Genesys Cloud's outbound interactions into the topic (``interaction-consumer poll``).

Genesys Cloud publishes ``CampaignInteraction`` through one door only, ``GET
/api/v2/outbound/campaigns/{id}/interactions``: a list of every current interaction of
one campaign in five buckets. The :class:`Poller` turns those answers into the topic
the daemon reads. The rules, in one place:

* **Which campaigns.** ``genesys.campaigns`` when given; else every campaign whose
  ``dialingMode`` is ``preview`` and whose ``campaignStatus`` may still have interactions
  (``on``, ``stopping``, ``forced_stopping``), discovered from the paged campaign list.
  Either way the list is read again every ``genesys.discovery_seconds``. A watched
  campaign stays watched until proven over: listed ``off``/``complete``/``forced_off``/
  ``invalid`` by a complete listing, or answering 404 twice in a row (one warning).
* **When.** Rounds of ``genesys.interval_seconds``: every campaign is polled once a
  round, the polls spread evenly over it, each request within the client's budget
  (:mod:`consumer.genesys.client`). A round that overruns (a slow API, a back-off)
  is followed by the next at once.
* **What is published.** Each interaction of the five lists, keyed by its ``id``, as
  the exact bytes the API returned for it (decoded as ``msgspec.Raw``: no field renamed,
  dropped or re-formatted), with ``campaign`` added from the answer's own ``campaign``
  when the object has none; only when those bytes, or the list they are in, differ from
  what was last published for the id (an entry that is not an object, has no id or is larger than
  ``kafka.max_record_bytes`` is skipped and counted). Headers: ``genesys.bucket``
  (which list) and ``genesys.polled.at`` (when the poll began, ISO-8601 UTC). An
  interaction absent from two consecutive successful polls of its campaign gets a
  tombstone (one miss may be the API's own hiccup); so do those of a campaign proven
  over. Only a complete answer is a successful poll: one without any of the lists
  (``{}``), one that does not decode, or an error proves no absence and counts no miss.
  Nothing of an interaction is remembered but a 16-byte digest of what was published,
  its list's name and its miss count.
* **Memory across restarts.** The topic is the poller's own changelog: before its first
  round, :meth:`Poller.rebuild` reads it to its end (readiness says so meanwhile) and
  keeps each key's digest under the campaign its value names (``campaign.id``, which
  every value the poller publishes has). Those interactions belong to no watched
  campaign until theirs is watched; from then on the two-polls rule holds for them too,
  so what ended while no poller ran is tombstoned in the first rounds, and those of a
  campaign proven over meanwhile at the first campaign read. (The simplest honest rule:
  a value naming a campaign is taken for the poller's; the topic must be its own.)
* **Campaign settings** go to ``<topic>.campaigns`` (compacted, keyed by campaign id;
  format in :mod:`consumer.formats.campaigns`) whenever they change; a deleted campaign
  gets a tombstone there too.
* **Heartbeats.** After a round in which at least one poll succeeded (or, with no
  campaign to poll, the campaign list was read), one heartbeat on every partition,
  vouching up to the oldest, among *every* watched campaign, of when its last
  successful poll began (or when it was first watched): a campaign failing every round
  holds ``upTo`` back, and the daemon ends up reporting the source silent. Its
  ``intervalSeconds`` is the interval achieved: the last round's length when it overran
  ``interval_seconds``, never less than the budget allows (when it cannot poll every
  campaign in time: warned once and shown by ``genesys_poller_budget_short``). A
  refused login or a round in which every poll failed sends none.
* **Readiness** fails while rebuilding, without a token, when no campaign was polled
  successfully for :data:`READY_INTERVALS` intervals, when the last poll of every
  campaign failed, and names each campaign failing :data:`FAILING_POLLS` times in a row
  and why (also ``genesys_poller_campaign_failing{campaign_id, reason}``).
* **Stopping.** :meth:`Poller.stop` (SIGTERM) wakes any pause at once (the client's
  too) and lets the round in hand finish, without waiting between its remaining polls
  nor backing off (a failing poll fails at once), then :meth:`Poller.run` returns.

Publishing goes through :class:`~consumer.daemon.ports.Publisher`; a record is
counted as published once acknowledged, and a poll whose records were not acknowledged
counts as failed and is published again next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from consumer.daemon.ports import Publisher
from consumer.engine.model import BUCKET_HEADER, iso
from consumer.errors import (
    BadResponseError,
    LoginRefusedError,
    NotFoundError,
    OutputError,
    PlatformError,
    PlatformUnavailableError,
    RateLimitedError,
    ServiceError,
)
from consumer.formats import campaigns as campaign_records
from consumer.formats import heartbeat
from consumer.formats.campaigns import BUCKETS, ENDED_STATUSES, LIVE_STATUSES, Campaign
from consumer.genesys.answer import (
    Probe,
    answer_decoder,
    campaign_of,
    present,
    probe_decoder,
    with_campaign,
)
from consumer.genesys.client import PlatformClient
from consumer.genesys.pacer import Pacer, sleep_unless
from consumer.kafka.heartbeats import send_heartbeats
from consumer.observe.logs import fields
from consumer.observe.metrics import PollerMetrics
from consumer.settings.schema import Settings

log = logging.getLogger(__name__)

POLLED_AT_HEADER: Final = "genesys.polled.at"
MISSES_BEFORE_TOMBSTONE: Final = 2
# readiness fails when no campaign was polled successfully for this many intervals
READY_INTERVALS: Final = 3
# a campaign whose polls failed this many times in a row makes the poller unready
FAILING_POLLS: Final = 2
REBUILD_RETRY_SECONDS: Final = 5.0
SHOWN_PROBLEMS: Final = 10  # campaigns named in readiness, at most


@dataclass
class _Watched:
    """One campaign being polled, and what was published of its interactions."""

    campaign: Campaign
    vouched: float  # when its last successful poll began (when it was first watched, before)
    # id -> digest of the value published, then its list's name (see _unchanged)
    published: dict[str, bytes] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)  # id -> successful polls absent
    seen: Counter[str] = field(default_factory=Counter)  # bucket -> interactions, last poll
    failures: int = 0  # polls failed in a row
    failing: str = ""  # why the last one failed (a metric label), while failures > 0
    error: str = ""  # and its message, for readiness


DIGEST_BYTES: Final = 16


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=DIGEST_BYTES).digest()


def _unchanged(published: bytes | None, polled: bytes) -> bool:
    """What was published for an id (value digest, then list name) says what a poll shows.

    The list counts: a callback moved from ``scheduled`` to ``pending`` keeps its bytes but
    not its rules (docs/genesys.md, "The API's five lists"). A digest read back from the topic
    (:meth:`Poller.rebuild`) has no list, since the records' headers are not read back:
    its value alone decides, and the poll's list is remembered from then on.
    """
    if published is None:
        return False
    if len(published) == DIGEST_BYTES:
        return published == polled[:DIGEST_BYTES]
    return published == polled


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


class History(Protocol):
    """Reads one partition of a compacted topic back: the latest value per key.

    The poller reads its own topic back with it (a
    :class:`~consumer.kafka.clients.ChangelogReader`; unit tests pass a fake).
    """

    async def read(
        self, partition: int, progress: Callable[[int], None]
    ) -> dict[bytes, bytes | None]:
        """The latest value per key from the partition's start to its current end."""
        ...


class Poller:
    """Polls the campaigns' interactions into ``kafka.topic``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        client: PlatformClient,
        publisher: Publisher,
        metrics: PollerMetrics,
        pacer: Pacer,
        history: History | None = None,
    ) -> None:
        self.settings = settings.genesys
        self.topic = settings.kafka.topic
        self.max_value_bytes = settings.kafka.max_record_bytes
        self.campaigns_topic = campaign_records.topic_for(self.topic)
        self.client = client
        self.publisher = publisher
        self.metrics = metrics
        self.pacer = pacer
        self.watched: dict[str, _Watched] = {}
        self._campaign_values: dict[str, bytes] = {}  # campaign id -> last record published
        self._listed_at: float | None = None  # when the campaigns were last read
        self._listed_ok = False
        self._not_found: dict[str, int] = {}  # campaign id -> 404s in a row
        self._deleted: set[str] = set()  # campaigns proven deleted (404 twice): never again
        self._stopping = asyncio.Event()
        self.rounds = 0
        # what the topic says was published before this process, by the campaign that
        # listed it (campaign id -> id -> digest): adopted when the campaign is watched
        self.history = history
        self.restored: dict[str, dict[str, bytes]] = {}
        self.rebuilt = history is None
        self._ok_at: float | None = None  # when the newest successful poll began
        self._waiting_since = pacer.time()  # for readiness, until a poll succeeded
        self.achieved = self.settings.interval_seconds  # the interval rounds really take
        self._short = False  # the budget cannot poll every campaign within the interval

    # -- operating -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the round in hand (without back-off pauses), then return from :meth:`run`."""
        self._stopping.set()
        self.client.hurry()

    def readiness(self) -> list[str]:
        """Why the poller is not ready (empty: ready)."""
        if not self.rebuilt:
            return [f"rebuilding what was published from {self.topic}"]
        problems = []
        if not self.client.has_token:
            problems.append("no access token")
        allowed = READY_INTERVALS * self.achieved
        since = self._waiting_since if self._ok_at is None else self._ok_at
        if self.pacer.time() - since > allowed:
            problems.append(f"no campaign polled successfully in {allowed:g} s")
        if self.watched and all(w.failures for w in self.watched.values()):
            problems.append("the last poll of every campaign failed")
        failing = [w for w in self.watched.values() if w.failures >= FAILING_POLLS]
        for w in failing[:SHOWN_PROBLEMS]:
            problems.append(
                f"campaign {w.campaign.id}: {w.failures} polls failed in a row "
                f"({w.failing}: {w.error})"
            )
        if len(failing) > SHOWN_PROBLEMS:
            problems.append(f"and {len(failing) - SHOWN_PROBLEMS} more campaigns failing")
        return problems

    async def run(self, rounds: int | None = None) -> None:
        """Rebuild, then poll round after round until stopped (or ``rounds`` rounds, for tests).

        Raises :class:`~consumer.errors.LoginRefusedError` when the login is refused.
        """
        await self.rebuild()
        while not self._stopping.is_set() and (rounds is None or self.rounds < rounds):
            began = self.pacer.time()
            await self.round()
            await self._pause_until(began + self.settings.interval_seconds)

    async def round(self) -> bool:
        """Poll every campaign once; heartbeats if any poll succeeded. Returns that."""
        self.rounds += 1
        round_began = self.pacer.time()
        await self._refresh_campaigns()
        began = self.pacer.time()
        ids = list(self.watched)
        floor = self._check_budget(len(ids))
        spacing = self.settings.interval_seconds / max(1, len(ids))
        succeeded = False
        for n, campaign_id in enumerate(ids):
            await self._pause_until(began + n * spacing)
            started = await self._poll(campaign_id)
            if started is not None:
                succeeded = True
                self._ok_at = started if self._ok_at is None else max(self._ok_at, started)
        if not ids and self._listed_ok:
            succeeded = True  # nothing to poll, and the campaign list says so
            self._ok_at = began
        # the interval achieved: the round's length when it overran the interval, and
        # never less than the budget allows (the rounds of a stretched budget vary)
        length = self.pacer.time() - round_began
        self.achieved = max(self.settings.interval_seconds, length, floor)
        self.metrics.round_seconds.set(length)
        if not succeeded:
            log.warning("round_failed", extra=fields(campaigns=len(ids)))
            return False
        # vouch only for what every campaign's polls saw: a failing one holds it back
        up_to = min((w.vouched for w in self.watched.values()), default=began)
        await self._heartbeat(up_to)
        return True

    def _check_budget(self, campaigns: int) -> float:
        """The shortest round the budget allows; warned (once) and shown when it overruns."""
        allowed = self.settings.requests_per_minute * self.settings.interval_seconds / 60
        floor = campaigns * 60 / self.settings.requests_per_minute
        short = campaigns > allowed
        self.metrics.budget_short.set(int(short))
        if short and not self._short:
            log.warning(
                "budget_short",
                extra=fields(
                    campaigns=campaigns,
                    requests_per_interval=round(allowed, 1),
                    round_seconds_at_least=round(floor, 1),
                    action="raise genesys.requests_per_minute or genesys.interval_seconds",
                ),
            )
        self._short = short
        return floor

    # -- the memory of what was published -----------------------------------------------------

    async def rebuild(self) -> None:
        """Read back what this poller published (its topic, to its end) before polling.

        The topic is the poller's own changelog: the latest value of each key is what was
        last published for it (a tombstone: nothing). Each value is remembered as its
        digest under the campaign it names (``campaign.id``); heartbeats and values
        without a campaign are not interactions of ours. Retried until it succeeds, or
        until :meth:`stop`.
        """
        while self.history is not None and not self.rebuilt and not self._stopping.is_set():
            try:
                restored = await self._read_history(self.history)
            except ServiceError as exc:
                log.warning("rebuild_failed", extra=fields(topic=self.topic, error=str(exc)))
                await self._pause_until(self.pacer.time() + REBUILD_RETRY_SECONDS)
                continue
            self.restored, self.rebuilt = restored, True
            self._waiting_since = self.pacer.time()
            log.info(
                "rebuilt",
                extra=fields(
                    topic=self.topic,
                    interactions=sum(len(ids) for ids in restored.values()),
                    campaigns=len(restored),
                ),
            )

    async def _read_history(self, history: History) -> dict[str, dict[str, bytes]]:
        restored: dict[str, dict[str, bytes]] = {}
        for partition in range(await self.publisher.partitions(self.topic)):
            latest = await history.read(partition, lambda _: None)
            for key, value in latest.items():
                if value is None or heartbeat.decode(value) is not None:
                    continue
                campaign_id = campaign_of(value)
                if campaign_id is not None:
                    restored.setdefault(campaign_id, {})[key.decode(errors="replace")] = _digest(
                        value
                    )
        return restored

    # -- campaigns -------------------------------------------------------------------------

    async def _refresh_campaigns(self) -> None:
        """Read the campaigns again when due (every round until a read succeeded)."""
        now = self.pacer.time()
        if self._listed_at is not None and now - self._listed_at < self.settings.discovery_seconds:
            return
        if self.settings.campaigns:
            listed = await self._named_campaigns()
        else:
            listed = await self._discovered_campaigns()
        if listed is None:
            return  # keep what we have; try again next round
        self._listed_at, self._listed_ok = now, True
        for campaign in listed.values():
            watched = self.watched.get(campaign.id)
            if watched is None:
                # what the topic holds of it is its own: absent twice, it is tombstoned
                adopted = self.restored.pop(campaign.id, {})
                log.info(
                    "campaign_added", extra=fields(campaign_id=campaign.id, restored=len(adopted))
                )
                self.watched[campaign.id] = _Watched(campaign, now, adopted)
            else:
                watched.campaign = campaign
            await self._publish_campaign(campaign)
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
                await self._publish_campaign(listed)  # its settings say why it stopped
                await self._drop(campaign_id, f"campaign_status={listed.campaign_status}")
            else:
                wanted[campaign_id] = listed  # still may have interactions: still watched
        return wanted

    async def _read_campaign(self, campaign_id: str) -> Campaign | None:
        """One campaign's settings; ``None`` when unread or not found (dropped at the second)."""
        try:
            campaign = await self.client.campaign(campaign_id)
        except NotFoundError:
            await self._answered_not_found(campaign_id)
            return None
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            log.warning("campaign_unread", extra=fields(campaign_id=campaign_id, error=str(exc)))
            return None
        self._not_found.pop(campaign_id, None)
        return campaign

    async def _answered_not_found(self, campaign_id: str) -> None:
        """The campaign answered 404: the second time in a row proves it deleted."""
        self._not_found[campaign_id] = n = self._not_found.get(campaign_id, 0) + 1
        if n < MISSES_BEFORE_TOMBSTONE:
            return
        self._deleted.add(campaign_id)
        log.warning(
            "campaign_not_found",
            extra=fields(campaign_id=campaign_id, action="dropped: no longer polled"),
        )
        await self._drop(campaign_id, "not_found", deleted=True)

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
                await self._drop(campaign_id, f"campaign_status={campaign.campaign_status}")
        return listed

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

    async def _drop(self, campaign_id: str, reason: str, *, deleted: bool = False) -> None:
        """Stop polling a campaign proven over; its interactions get tombstones."""
        watched = self.watched.pop(campaign_id, None)
        self._not_found.pop(campaign_id, None)
        ended = list(self.restored.pop(campaign_id, {}))
        if watched is not None:
            ended += watched.published
            self._healthy(watched)
        log.info(
            "campaign_dropped",
            extra=fields(campaign_id=campaign_id, reason=reason, tombstones=len(ended)),
        )
        if ended:
            try:
                await self._send([(iid.encode(), None, []) for iid in ended], "tombstone")
            except OutputError as exc:
                log.warning("publish_failed", extra=fields(topic=self.topic, error=str(exc)))
                # kept as unwatched: the next campaign read proves it over again, and retries
                self.restored.setdefault(campaign_id, {}).update(dict.fromkeys(ended, b""))
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
        started = self.pacer.time()
        try:
            body = await self.client.interactions(campaign_id)
            answer = answer_decoder.decode(body)
        except NotFoundError as exc:
            self._failed(watched, exc, "not_found")
            await self._answered_not_found(campaign_id)
            return None
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            self._failed(watched, exc)
            return None
        except msgspec.DecodeError as exc:
            self._failed(watched, BadResponseError(f"interactions: {exc}"), "incomplete")
            return None
        if not answer.complete():
            # absence is only evidence in a listing: no miss is counted from this answer
            error = BadResponseError("interactions: an answer without the lists")
            self._failed(watched, error, "incomplete")
            return None
        self._not_found.pop(campaign_id, None)
        campaign_ref = (
            bytes(answer.campaign)
            if present(answer.campaign)
            else msgspec.json.encode({"id": campaign_id, "name": watched.campaign.name})
        )
        polled_at = iso(started).encode()
        current: dict[str, bytes] = {}  # id -> digest and list of what the poll shows
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
                polled = current[probe.id] = _digest(value) + bucket.encode()
                if not _unchanged(watched.published.get(probe.id), polled):
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
            self._failed(watched, exc)
            return None
        watched.published.update(current)  # what was sent, and the lists of the rest
        for iid in gone:
            del watched.published[iid]
            del misses[iid]
        watched.misses = misses
        watched.seen, watched.vouched = seen, started
        self._healthy(watched)
        if invalid:
            self.metrics.invalid.inc(invalid)
            log.warning(
                "interactions_invalid", extra=fields(campaign_id=campaign_id, count=invalid)
            )
        self.metrics.polls.labels("ok").inc()
        self.metrics.poll_seconds.observe(self.pacer.time() - started)
        self._count_seen()
        return started

    def _failed(self, watched: _Watched, exc: BaseException, result: str = "failed") -> None:
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

    def _healthy(self, watched: _Watched) -> None:
        """The campaign no longer fails (polled, or dropped): its failing series goes."""
        if watched.failures:
            self.metrics.campaign_failing.remove(watched.campaign.id, watched.failing)
        watched.failures, watched.failing, watched.error = 0, "", ""

    def _count_seen(self) -> None:
        totals: Counter[str] = Counter()
        for watched in self.watched.values():
            totals.update(watched.seen)
        for bucket in BUCKETS:
            self.metrics.interactions.labels(bucket).set(totals[bucket])

    async def _send(
        self, records: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]], kind: str
    ) -> None:
        """Publish (key, value, headers) records and wait until all are acknowledged.

        Each also says which source published it: the daemon judges an interaction only
        as far as its own source's heartbeats vouch (:mod:`consumer.formats.heartbeat`).
        """
        if not records:
            return
        source = heartbeat.source_header(self.settings.source_id)
        acks = [
            await self.publisher.send(self.topic, key, value, [*headers, source])
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
                self.achieved,
            )
        except OutputError as exc:
            log.warning("heartbeat_failed", extra=fields(error=str(exc)))
            return
        self.metrics.heartbeats.inc(sent)

    async def _pause_until(self, moment: float) -> None:
        """Wait until ``moment``, or less once stopping (the round in hand then hurries)."""
        await sleep_unless(self.pacer, moment - self.pacer.time(), self._stopping)
