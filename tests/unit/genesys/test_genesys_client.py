"""The Platform API client against the double: token, 401, 429, 503, 404, budget, paging."""

from __future__ import annotations

import asyncio
import email.utils
import itertools

import pytest

from consumer.errors import (
    BadResponseError,
    LoginRefusedError,
    NotFoundError,
    PlatformUnavailableError,
    RateLimitedError,
)
from consumer.genesys.budget import RequestBudget
from consumer.genesys.client import BACKOFF_FIRST
from consumer.genesys.reply import MAX_PAUSE, retry_after
from consumer.testing.apidouble import campaign_entity
from tests.unit.platform_rig import SECRET, platform


def test_token_is_reused_then_renewed_before_it_expires() -> None:
    """One login serves requests until half the token's life has passed; then a new one."""

    async def scenario() -> tuple[int, int, int, float]:
        async with platform() as p:
            p.double.faults.token_seconds = 100
            await p.client.interactions("c-1")
            p.pacer.now += 40
            await p.client.interactions("c-1")
            after_reuse = len(p.api_requests("/oauth/token"))
            p.pacer.now += 20  # 60 s into a 100 s token: past its renewal point
            await p.client.interactions("c-1")
            renewed = len(p.api_requests("/oauth/token"))
            return (
                after_reuse,
                renewed,
                len(p.api_requests("/interactions")),
                p.metric("genesys_poller_token_renewals_total", reason="expiry"),
            )

    after_reuse, renewed, requests, expiry_renewals = asyncio.run(scenario())
    assert after_reuse == 1
    assert renewed == 2
    assert requests == 3
    assert expiry_renewals == 1


def test_expired_token_answered_401_gets_one_renewal_and_the_request_again() -> None:
    """A 401 (token expired early) fetches a new token once and repeats the request."""

    async def scenario() -> tuple[bytes, list[int], float]:
        async with platform() as p:
            await p.client.interactions("c-1")
            p.double.expire_tokens()
            body = await p.client.interactions("c-1")
            statuses = [s.status for s in p.double.served if "/interactions" in s.path]
            return (
                body,
                statuses,
                p.metric("genesys_poller_token_renewals_total", reason="unauthorized"),
            )

    body, statuses, renewals = asyncio.run(scenario())
    assert body.startswith(b'{"campaign":')
    assert statuses == [200, 401, 200]
    assert renewals == 1


def test_refused_login_is_a_clear_error_without_the_secret() -> None:
    """Three refusals raise LoginRefusedError naming client id and settings, not the secret."""

    async def scenario() -> tuple[LoginRefusedError, int, float]:
        async with platform() as p:
            p.double.faults.refuse_login = True
            with pytest.raises(LoginRefusedError) as caught:
                await p.client.interactions("c-1")
            refusals = p.metric("genesys_poller_login_refusals_total")
            return caught.value, len(p.api_requests("/oauth/token")), refusals

    error, logins, refusals = asyncio.run(scenario())
    assert logins == 3
    assert refusals == 3
    assert "poller-test" in str(error)
    assert "genesys.client_secret" in str(error)
    assert SECRET not in str(error) + repr(error)


def test_429_with_retry_after_waits_that_long_for_every_request() -> None:
    """After a 429 with Retry-After: 7 the next request goes out 7 s later, and succeeds."""

    async def scenario() -> list[float]:
        async with platform() as p:
            p.double.faults.rate_limited = 1
            p.double.faults.retry_after = 7
            await p.client.interactions("c-1")
            return p.api_requests("/interactions")

    first, second = asyncio.run(scenario())
    assert second - first == pytest.approx(7)


def test_429_without_retry_after_backs_off_with_jitter() -> None:
    """Without Retry-After the client waits a jittered back-off (1 s, a quarter either way)."""

    async def scenario() -> list[float]:
        async with platform() as p:
            p.double.faults.rate_limited = 1
            await p.client.interactions("c-1")
            return p.api_requests("/interactions")

    first, second = asyncio.run(scenario())
    assert BACKOFF_FIRST * 0.75 <= second - first <= BACKOFF_FIRST * 1.25


def test_429_that_persists_raises_rate_limited_after_three_tries() -> None:
    """Three 429 in a row: RateLimitedError with its Retry-After; the client works after."""

    async def scenario() -> tuple[RateLimitedError, bytes]:
        async with platform() as p:
            p.double.faults.rate_limited = 3
            p.double.faults.retry_after = 2
            with pytest.raises(RateLimitedError) as caught:
                await p.client.interactions("c-1")
            return caught.value, await p.client.interactions("c-1")

    error, body = asyncio.run(scenario())
    assert error.retry_after == 2
    assert body.startswith(b"{")


def test_503_backs_off_doubling_and_recovers() -> None:
    """503s are retried after growing pauses; three in a row raise PlatformUnavailableError."""

    async def scenario() -> tuple[list[float], bytes]:
        async with platform() as p:
            p.double.faults.unavailable = 3
            with pytest.raises(PlatformUnavailableError):
                await p.client.interactions("c-1")
            body = await p.client.interactions("c-1")
            return p.api_requests("/interactions"), body

    times, body = asyncio.run(scenario())
    assert len(times) == 4
    pauses = [b - a for a, b in itertools.pairwise(times)]
    # the project's one back-off: doubling from 1 s, a quarter either way
    assert 0.75 <= pauses[0] <= 1.25
    assert 1.5 <= pauses[1] <= 2.5
    assert 3.0 <= pauses[2] <= 5.0
    assert body.startswith(b"{")


def test_unknown_campaign_is_not_found() -> None:
    """A campaign that does not exist answers 404: NotFoundError."""

    async def scenario() -> None:
        async with platform() as p:
            with pytest.raises(NotFoundError):
                await p.client.interactions("deleted")

    asyncio.run(scenario())


def test_campaign_list_is_read_page_by_page() -> None:
    """250 campaigns come back whole from three pages of 100."""
    entities = [campaign_entity(f"c-{n:03d}", f"C{n}", "preview", "on") for n in range(250)]

    async def scenario() -> tuple[list[str], int]:
        async with platform(entities) as p:
            found = await p.client.campaigns()
            return [c.id for c in found], len(p.api_requests("/campaigns"))

    ids, pages = asyncio.run(scenario())
    assert ids == [e["id"] for e in entities]
    assert pages == 3


def test_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After is delta-seconds or an HTTP date; nonsense is no value."""
    now = 1_800_000_000.0
    assert retry_after("7", now) == 7
    assert retry_after(email.utils.formatdate(now + 10, usegmt=True), now) == 10
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


@pytest.mark.parametrize("asked", ["inf", "1e999", "Infinity", "86400"])
def test_retry_after_is_clamped_to_the_budget_window(asked: str) -> None:
    """A pause asked for longer than MAX_PAUSE, infinite included, is MAX_PAUSE."""
    assert retry_after(asked, 1_800_000_000.0) == MAX_PAUSE


def test_retry_after_far_dates_and_nan_are_bounded() -> None:
    """A date years ahead pauses MAX_PAUSE; nan pauses nothing."""
    now = 1_800_000_000.0
    assert retry_after(email.utils.formatdate(now + 10**8, usegmt=True), now) == MAX_PAUSE
    assert retry_after("nan", now) == 0


def test_budget_allows_n_in_any_window() -> None:
    """The budget admits N requests, then makes the next wait until the oldest leaves the window."""
    budget = RequestBudget(3, window=60)
    for at in (0.0, 10.0, 20.0):
        assert budget.delay(at) == 0
        budget.spend(at)
    assert budget.delay(30.0) == 30.0
    assert budget.delay(60.0) == 0
    assert budget.used(60.0) == 2


def test_campaign_listing_cut_short_is_an_error() -> None:
    """An empty page before pageCount, or a page without pageCount, fails the whole read."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(150)]
    errors: list[str] = []

    async def scenario() -> None:
        async with platform(entities) as p:
            for fault in ("short_listing", "no_page_count"):
                setattr(p.double.faults, fault, True)
                with pytest.raises(BadResponseError) as caught:
                    await p.client.campaigns()
                errors.append(str(caught.value))
                setattr(p.double.faults, fault, False)

    asyncio.run(scenario())
    assert "cut short" in errors[0]
    assert "pageCount" in errors[1]
