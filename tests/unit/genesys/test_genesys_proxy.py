"""The Platform API client honours the standard proxy variables (egress via a proxy only)."""

from __future__ import annotations

import asyncio

import pytest

from consumer.errors import PlatformUnavailableError
from tests.unit.platform_rig import platform

# a host no resolver knows: a request reaches the double only through the proxy
API = "http://api.genesys.invalid"


def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTP_PROXY set, login and requests reach the API through the proxy."""

    async def scenario() -> int:
        async with platform(api_base=API, login_base=API) as p:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{p.double.port}")
            await p.client.interactions("c-1")
            return len(p.api_requests("/interactions"))

    assert asyncio.run(scenario()) == 1


def test_no_proxy_hosts_are_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host NO_PROXY names bypasses the proxy (and here, unresolvable, is not reached)."""

    async def scenario() -> int:
        async with platform(api_base=API, login_base=API) as p:
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{p.double.port}")
            monkeypatch.setenv("NO_PROXY", "genesys.invalid")
            with pytest.raises(PlatformUnavailableError):
                await p.client.interactions("c-1")
            return len(p.double.served)

    assert asyncio.run(scenario()) == 0
