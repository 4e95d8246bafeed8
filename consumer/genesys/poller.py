"""The poller: Genesys Cloud's outbound interactions into the topic (``interaction-consumer poll``).

Genesys Cloud publishes ``CampaignInteraction`` through one door only, ``GET
/api/v2/outbound/campaigns/{id}/interactions``: a list of every current interaction of
one campaign in five buckets. The :class:`Poller` turns those answers into the topic
the daemon reads. The rules, each with the code that keeps it:

* **Which campaigns** are polled, and when one is proven over:
  :mod:`consumer.genesys.watchlist`.
* **What is published** of a poll, and when an interaction is proven gone:
  :mod:`consumer.genesys.changes`.
* **Memory across restarts**: :mod:`consumer.genesys.history`.
* **Campaign settings**, and how records are published: :mod:`consumer.genesys.sender`.
* **When.** Rounds of ``genesys.interval_seconds``: every campaign is polled once a
  round, the polls spread evenly over it, each request within the client's budget
  (:mod:`consumer.genesys.client`). A round that overruns (a slow API, a back-off)
  is followed by the next at once.
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
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import msgspec

from consumer.daemon.ports import Publisher
from consumer.errors import (
    BadResponseError,
    LoginRefusedError,
    NotFoundError,
    OutputError,
    PlatformError,
    ServiceError,
)
from consumer.genesys.answer import answer_decoder
from consumer.genesys.changes import Watched, compare
from consumer.genesys.client import PlatformClient
from consumer.genesys.history import History, read_back
from consumer.genesys.metrics import PollerMetrics
from consumer.genesys.pacer import Pacer, sleep_unless
from consumer.genesys.sender import Sender
from consumer.genesys.watchlist import WatchList
from consumer.observe.logs import fields
from consumer.settings.schema import Settings

log = logging.getLogger(__name__)

# readiness fails when no campaign was polled successfully for this many intervals
READY_INTERVALS: Final = 3
# a campaign whose polls failed this many times in a row makes the poller unready
FAILING_POLLS: Final = 2
REBUILD_RETRY_SECONDS: Final = 5.0
SHOWN_PROBLEMS: Final = 10  # campaigns named in readiness, at most


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
        self.client = client
        self.publisher = publisher
        self.metrics = metrics
        self.pacer = pacer
        self.sender = Sender(publisher, self.topic, self.settings.source_id, metrics)
        self.watchlist = WatchList(self.settings, client, self.sender, metrics)
        self._stopping = asyncio.Event()
        self.rounds = 0
        self.history = history
        self.rebuilt = history is None
        self._ok_at: float | None = None  # when the newest successful poll began
        self._waiting_since = pacer.time()  # for readiness, until a poll succeeded
        self.achieved = self.settings.interval_seconds  # the interval rounds really take
        self._short = False  # the budget cannot poll every campaign within the interval

    @property
    def watched(self) -> dict[str, Watched]:
        """The campaigns being polled, by id."""
        return self.watchlist.watched

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
        await self.watchlist.refresh(round_began)
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
        if not ids and self.watchlist.listed:
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
        await self.sender.heartbeat(up_to, self.achieved)
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
                partitions = await self.publisher.partitions(self.topic)
                restored = await read_back(self.history, partitions)
            except ServiceError as exc:
                log.warning("rebuild_failed", extra=fields(topic=self.topic, error=str(exc)))
                await self._pause_until(self.pacer.time() + REBUILD_RETRY_SECONDS)
                continue
            self.watchlist.restored, self.rebuilt = restored, True
            self._waiting_since = self.pacer.time()
            log.info(
                "rebuilt",
                extra=fields(
                    topic=self.topic,
                    interactions=sum(len(ids) for ids in restored.values()),
                    campaigns=len(restored),
                ),
            )

    # -- polling one campaign --------------------------------------------------------------

    async def _poll(self, campaign_id: str) -> float | None:
        """Poll one campaign and publish what changed; when it began, or ``None`` if it failed."""
        watched = self.watched[campaign_id]
        started = self.pacer.time()
        try:
            body = await self.client.interactions(campaign_id)
            answer = answer_decoder.decode(body)
        except NotFoundError as exc:
            self.watchlist.failed(watched, exc, "not_found")
            await self.watchlist.not_found(campaign_id)
            return None
        except LoginRefusedError:
            raise
        except PlatformError as exc:
            self.watchlist.failed(watched, exc)
            return None
        except msgspec.DecodeError as exc:
            self.watchlist.failed(watched, BadResponseError(f"interactions: {exc}"), "incomplete")
            return None
        if not answer.complete():
            # absence is only evidence in a listing: no miss is counted from this answer
            error = BadResponseError("interactions: an answer without the lists")
            self.watchlist.failed(watched, error, "incomplete")
            return None
        self.watchlist.found(campaign_id)
        changes = compare(watched, answer, started, self.max_value_bytes)
        try:
            await self.sender.send(changes.records, "snapshot")
            await self.sender.send([(iid.encode(), None, []) for iid in changes.gone], "tombstone")
        except OutputError as exc:
            self.watchlist.failed(watched, exc)
            return None
        watched.remember(changes, started)
        self.watchlist.healthy(watched)
        if changes.invalid:
            self.metrics.invalid.inc(changes.invalid)
            log.warning(
                "interactions_invalid",
                extra=fields(campaign_id=campaign_id, count=changes.invalid),
            )
        self.metrics.polls.labels("ok").inc()
        self.metrics.poll_seconds.observe(self.pacer.time() - started)
        self.watchlist.count_seen()
        return started

    async def _pause_until(self, moment: float) -> None:
        """Wait until ``moment``, or less once stopping (the round in hand then hurries)."""
        await sleep_unless(self.pacer, moment - self.pacer.time(), self._stopping)
