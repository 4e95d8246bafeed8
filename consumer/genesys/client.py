"""The Genesys Cloud Platform API client: login, campaigns, a campaign's interactions.

One pooled ``aiohttp.ClientSession``. What it takes care of, so the poller does not:

* **The token.** OAuth client credentials (HTTP Basic, form body), renewed before
  ``expires_in`` runs out (at half its life, or five minutes before the end for long
  ones) and once when the API answers 401. The official SDK does neither for this
  grant. A login endpoint that refuses the client three times in a row (with back-off
  between) raises :class:`~consumer.errors.LoginRefusedError`: retrying will not fix a
  wrong secret, and ``poll`` exits 3 on it.
* **The rate limit.** Every API request waits for room in a budget of
  ``genesys.requests_per_minute`` per sliding minute (:mod:`consumer.genesys.budget`),
  below the platform's 300. A 429 pauses *every* request (the limit is per client) for
  its ``Retry-After``, or a back-off with jitter when it has none; 5xx answers and
  network errors back off the same way (doubling to a minute). A request is tried up to
  three times, then fails with the project's error, and the caller decides: the poller
  retries the campaign next round. Nothing here stops the process but a refused login.
* **Durations from the network are bounded.** A ``Retry-After`` (seconds or a date) is
  clamped to :data:`~consumer.genesys.reply.MAX_PAUSE` (the budget's window: a minute),
  ``inf``, ``1e999`` and ``nan`` included (:mod:`consumer.genesys.reply`); a token's
  ``expires_in`` to :data:`MAX_TOKEN_SECONDS`. Every wait here ends at once when
  :meth:`PlatformClient.hurry` is called (SIGTERM).
* **Errors.** aiohttp's errors are translated into :mod:`consumer.errors` here::

      aiohttp.ClientError, TimeoutError, HTTP 5xx  -> PlatformUnavailableError
      HTTP 429                                     -> RateLimitedError (retry_after)
      HTTP 404                                     -> NotFoundError
      not the documented JSON, too large           -> BadResponseError
      other 4xx, 401 after a fresh token           -> PlatformError
      login refused three times                    -> LoginRefusedError

* **Secrets.** The client secret and the access token are
  :class:`~consumer.settings.secret.Secret` values; the Authorization headers are built here and
  never stored in anything that logs, counts or prints them, and no error message
  carries a header.

Everything that waits goes through a :class:`~consumer.genesys.pacer.Pacer`, so tests run
a simulated minute in an instant.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Mapping
from types import TracebackType
from typing import Final

import aiohttp
import msgspec

from consumer.backoff import Backoff
from consumer.errors import (
    BadResponseError,
    LoginRefusedError,
    NotFoundError,
    PlatformError,
    PlatformUnavailableError,
    RateLimitedError,
)
from consumer.formats.campaigns import Campaign
from consumer.genesys.budget import RequestBudget
from consumer.genesys.metrics import PollerMetrics
from consumer.genesys.pacer import Pacer, SystemPacer, sleep_unless
from consumer.genesys.reply import (
    MAX_PAUSE,
    Reply,
    bounded,
    decode,
    oauth_error,
    read_capped,
    retry_after,
)
from consumer.observe.logs import fields
from consumer.settings.genesys import GenesysSettings
from consumer.settings.secret import Secret

log = logging.getLogger(__name__)

ATTEMPTS: Final = 3  # tries of one request (and of one login) before its error is raised
BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 60.0
PAGE_SIZE: Final = 100  # the largest page the campaigns list serves
MAX_PAGES: Final = 1000  # 100,000 campaigns: beyond that the answers are not believable
MAX_TOKEN_SECONDS: Final = 172_800.0  # the longest token lifetime the platform configures


class _Token(msgspec.Struct):
    access_token: str
    expires_in: float = 86_400.0


class _CampaignPage(msgspec.Struct, rename="camel"):
    entities: list[Campaign] = []
    page_count: int | None = None


class PlatformClient:
    """The Platform API for one OAuth client; use as ``async with`` or start/close."""

    def __init__(
        self,
        settings: GenesysSettings,
        metrics: PollerMetrics,
        *,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if settings.api_url is None or settings.login_url is None:
            raise ValueError("genesys.region or genesys.api_base is needed")  # checked by poll
        if settings.client_id is None or settings.client_secret is None:
            raise ValueError("genesys.client_id and genesys.client_secret are needed")
        self.api_url = settings.api_url
        self.login_url = settings.login_url
        self.client_id = settings.client_id
        pair = f"{settings.client_id}:{settings.client_secret.reveal()}".encode()
        self._basic = Secret("Basic " + base64.b64encode(pair).decode())
        self._timeout = settings.timeout_seconds
        self.metrics = metrics
        self.pacer = pacer or SystemPacer()
        self.budget = RequestBudget(settings.requests_per_minute)
        metrics.budget_limit.set(settings.requests_per_minute)
        metrics.budget_used.set_function(lambda: self.budget.used(self.pacer.time()))
        self._session: aiohttp.ClientSession | None = None
        self._token: Secret | None = None
        self._renew_at = 0.0
        self._renew_reason = "start"  # why the next token is fetched, for the metric
        self._paused_until = 0.0  # shared by every request: the limit is per client
        # consecutive transient failures double it; a quarter either way spreads clients
        self._backoff = Backoff(BACKOFF_FIRST, BACKOFF_MAX, jitter=0.25, rng=rng)
        self._hurried = asyncio.Event()

    async def start(self) -> None:
        """Open the connection pool."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=8),
            headers={"Accept": "application/json", "User-Agent": "interaction-consumer"},
            # HTTPS_PROXY, HTTP_PROXY and NO_PROXY: where egress is only through a proxy
            trust_env=True,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> PlatformClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def has_token(self) -> bool:
        """A token was obtained and has not been found expired or refused since."""
        return self._token is not None

    # -- the API ---------------------------------------------------------------------------

    async def campaigns(self) -> list[Campaign]:
        """Every campaign of the org, all pages (filter them yourself: there is no filter).

        A listing that cannot be proven complete (a page without ``pageCount``, an empty
        page before the last) raises :class:`BadResponseError`: a campaign missing from a
        short list is not a campaign gone.
        """
        found: list[Campaign] = []
        page = 1
        while page <= MAX_PAGES:
            params = {"pageSize": str(PAGE_SIZE), "pageNumber": str(page)}
            body = await self.get("campaigns", "/api/v2/outbound/campaigns", params)
            listed = decode(body, _CampaignPage, "campaigns")
            if listed.page_count is None:
                # without it the end of the list cannot be told from a listing cut short
                raise BadResponseError(f"campaigns: page {page} without pageCount")
            if (
                not listed.entities
                and listed.page_count > 0
                and (page, listed.page_count) != (1, 1)
            ):
                # only the one page of an org without campaigns may be empty
                raise BadResponseError(
                    f"campaigns: page {page} of {listed.page_count} is empty (listing cut short)"
                )
            found += listed.entities
            if page >= listed.page_count:
                return found
            page += 1
        raise BadResponseError(f"campaigns: more than {MAX_PAGES} pages")

    async def campaign(self, campaign_id: str) -> Campaign:
        """One campaign's settings; :class:`NotFoundError` when it does not exist."""
        body = await self.get("campaign", f"/api/v2/outbound/campaigns/{campaign_id}")
        return decode(body, Campaign, "campaign")

    async def interactions(self, campaign_id: str) -> bytes:
        """A campaign's ``CampaignInteractions`` answer, as the raw bytes the API sent."""
        path = f"/api/v2/outbound/campaigns/{campaign_id}/interactions"
        return await self.get("interactions", path)

    async def get(self, endpoint: str, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """The body of ``GET path`` (200), after login, budget and back-off; see the module."""
        failure: PlatformError = PlatformUnavailableError(f"{endpoint}: not tried")
        renewed = False
        for attempt in range(ATTEMPTS):
            if attempt and self._hurrying:
                break
            await self._wait_turn()
            wait = self.budget.delay(self.pacer.time())
            while wait > 0:
                if self._hurrying:
                    raise PlatformUnavailableError(f"{endpoint}: stopping, over the budget")
                await sleep_unless(self.pacer, wait, self._hurried)
                wait = self.budget.delay(self.pacer.time())
            token = await self.token()
            self.budget.spend(self.pacer.time())
            headers = {"Authorization": f"Bearer {token.reveal()}"}
            try:
                answer = await self._send(endpoint, "GET", self.api_url + path, headers, params)
            except PlatformUnavailableError as exc:
                failure = exc
                self._back_off(None, "unavailable")
                continue
            if answer.status == 200:
                self._backoff.reset()
                return answer.body
            if answer.status == 401 and not renewed:
                # expired early, or revoked: one fresh token, then the request again
                renewed = True
                self._token = None
                self._renew_reason = "unauthorized"
                continue
            if answer.status == 404:
                raise NotFoundError(f"{endpoint} {path}: HTTP 404")
            if answer.status == 429:
                failure = RateLimitedError(f"{endpoint}: HTTP 429", answer.retry_after)
                self._back_off(answer.retry_after, "rate_limited")
                continue
            if answer.status >= 500:
                failure = PlatformUnavailableError(f"{endpoint}: HTTP {answer.status}")
                self._back_off(None, "unavailable")
                continue
            raise PlatformError(f"{endpoint} {path}: HTTP {answer.status}")
        raise failure

    # -- the token -------------------------------------------------------------------------

    async def token(self) -> Secret:
        """A valid access token: the one in hand, or a new one from the login endpoint."""
        if self._token is not None and self.pacer.time() < self._renew_at:
            return self._token
        reason = self._renew_reason if self._token is None else "expiry"
        refused = 0
        failure: PlatformError = PlatformUnavailableError("token: not tried")
        for attempt in range(ATTEMPTS):
            if attempt and self._hurrying:
                break
            await self._wait_turn()
            headers = {"Authorization": self._basic.reveal()}
            try:
                answer = await self._send(
                    "token",
                    "POST",
                    self.login_url + "/oauth/token",
                    headers,
                    data={"grant_type": "client_credentials"},
                )
            except PlatformUnavailableError as exc:
                failure = exc
                self._back_off(None, "unavailable")
                continue
            if answer.status == 200:
                token = decode(answer.body, _Token, "token")
                now = self.pacer.time()
                self._token = Secret(token.access_token)
                life = bounded(token.expires_in, MAX_TOKEN_SECONDS)
                self._renew_at = now + max(life / 2, life - 300)
                self._backoff.reset()
                self._renew_reason = "expiry"
                self.metrics.token_renewals.labels(reason).inc()
                log.info("token_obtained", extra=fields(reason=reason, expires_in=token.expires_in))
                return self._token
            if answer.status == 429 or answer.status >= 500:
                failure = PlatformUnavailableError(f"token: HTTP {answer.status}")
                self._back_off(answer.retry_after, "unavailable")
                continue
            refused += 1
            self.metrics.login_refusals.inc()
            failure = LoginRefusedError(
                f"the login endpoint {self.login_url} refused client id {self.client_id!r} "
                f"{refused} times (HTTP {answer.status}{oauth_error(answer.body)}): "
                "check genesys.client_id and genesys.client_secret"
            )
            self._back_off(None, "unavailable")
        self._token = None
        raise failure

    # -- the wire --------------------------------------------------------------------------

    def hurry(self) -> None:
        """The process is stopping: no more back-off pauses, retries or budget waits.

        A request that would wait fails at once instead, so that a shutdown during an
        outage takes a request's time-out at most, not minutes of back-off.
        """
        self._hurried.set()

    @property
    def _hurrying(self) -> bool:
        return self._hurried.is_set()

    @property
    def paused_for(self) -> float:
        """Seconds every request still waits for a back-off in force (0: none)."""
        return max(0.0, self._paused_until - self.pacer.time())

    async def _wait_turn(self) -> None:
        """Wait out a back-off in force (a 429's Retry-After, an outage's pause)."""
        await sleep_unless(self.pacer, self._paused_until - self.pacer.time(), self._hurried)

    def _back_off(self, asked: float | None, cause: str) -> None:
        """Pause every request: ``asked`` seconds, else a doubling back-off with jitter."""
        asked = self._backoff.next() if asked is None else bounded(asked, MAX_PAUSE)
        self._paused_until = max(self._paused_until, self.pacer.time() + asked)
        self.metrics.backoffs.labels(cause).inc()
        log.warning("platform_backoff", extra=fields(cause=cause, seconds=round(asked, 3)))

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        if self._session is None:
            raise RuntimeError("PlatformClient used before start()")
        try:
            async with self._session.request(
                method, url, headers=headers, params=params, data=data, allow_redirects=False
            ) as response:
                body = await read_capped(response, endpoint)
                waited = retry_after(response.headers.get("Retry-After"), self.pacer.time())
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.requests.labels(endpoint, "error").inc()
            # the exception's text names the host at most, never a header
            raise PlatformUnavailableError(f"{endpoint}: {type(exc).__name__}: {exc}") from None
        self.metrics.requests.labels(endpoint, str(status)).inc()
        return Reply(status, body, waited)
