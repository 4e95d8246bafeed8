"""The Platform API double: simulated traffic in the right lists, switches over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp

from consumer.simulator.dialer import SimulatedDialer, bucket_of
from consumer.simulator.traffic import TrafficSettings
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity

START = 1_800_000_000.0


def test_bucket_follows_the_lifecycle_and_ended_interactions_leave() -> None:
    """Lists in lifecycle order, pending to interacting; wrapped up and inactive: gone."""
    t = "2026-11-25T10:00:00Z"
    assert bucket_of({"creationTime": t}) == "pending"
    assert bucket_of({"previewPopDeliveredTime": t}) == "previewing"
    assert bucket_of({"previewPopDeliveredTime": t, "callPlacedTime": t}) == "proceeding"
    assert bucket_of({"callPlacedTime": t, "previewConnectedTime": t}) == "interacting"
    assert bucket_of({"lastActivePreviewWrapupTime": t, "activePreviewCall": False}) is None
    assert bucket_of({"conversation": {"endTime": t}, "activePreviewCall": False}) is None
    # a preview left open after its call ended is still live (a stall the monitor catches)
    left_open = {
        "previewConnectedTime": t,
        "conversation": {"endTime": t},
        "activePreviewCall": True,
    }
    assert bucket_of(left_open) == "interacting"


def test_simulated_dialer_shows_live_interactions_in_campaigns_of_their_mode() -> None:
    """A simulated minute: interactions sit in campaigns of their own dialing mode, camelCase."""
    simulated = SimulatedDialer(TrafficSettings(rate=20, seed=3), START)
    simulated.advance(START + 60)
    campaigns = simulated.dialer.campaigns
    shown = 0
    for campaign_id, interactions in simulated.dialer.interactions.items():
        for bucket, raw in interactions.values():
            snapshot = json.loads(raw)
            shown += 1
            assert snapshot["campaign"]["id"] == campaign_id
            mode = campaigns[campaign_id]["dialingMode"]
            assert snapshot["dialingMode"].lower() == mode
            assert campaigns[campaign_id]["campaignStatus"] in ("on", "stopping")
            assert bucket == bucket_of(snapshot)
            assert "creationTime" in snapshot
    assert shown > 50
    started = simulated.sim.started
    assert shown < started  # ended ones are gone


def test_switches_over_http_and_api_shape() -> None:
    """POST /_double/faults flips faults; answers use the API's fields; unknown switches are 400."""

    async def scenario() -> dict[str, Any]:
        dialer = Dialer()
        dialer.add_campaign(campaign_entity("c-1", "A", "preview", "on"))
        secret = "pw"  # noqa: S105 - the double's made-up credential
        double = ApiDouble(dialer, client_id="id", client_secret=secret, clock=lambda: START)
        await double.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{double.port}"
        got: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as http:
                basic = {"Authorization": "Basic " + base64.b64encode(b"id:pw").decode()}
                form = {"grant_type": "client_credentials"}
                async with http.post(f"{base}/oauth/token", headers=basic, data=form) as r:
                    token = (await r.json())["access_token"]
                    got["expires_in"] = (await r.json())["expires_in"]
                bearer = {"Authorization": f"Bearer {token}"}
                switches = {"rate_limited": 1, "retry_after": 3}
                async with http.post(f"{base}/_double/faults", json=switches) as r:
                    got["set"] = r.status
                async with http.get(f"{base}/api/v2/outbound/campaigns", headers=bearer) as r:
                    got["limited"] = (r.status, r.headers.get("Retry-After"))
                async with http.get(f"{base}/api/v2/outbound/campaigns", headers=bearer) as r:
                    got["listing"] = await r.json()
                url = f"{base}/api/v2/outbound/campaigns/c-1/interactions"
                async with http.get(url, headers=bearer) as r:
                    got["interactions"] = await r.json()
                async with http.post(f"{base}/_double/faults", json={"nonsense": 1}) as r:
                    got["unknown"] = r.status
                async with http.post(f"{base}/_double/faults", json={"delete_campaign": "c-1"}):
                    pass
                async with http.get(url, headers=bearer) as r:
                    got["deleted"] = r.status
                async with http.get(f"{base}/api/v2/outbound/campaigns", headers={}) as r:
                    got["no_token"] = r.status
        finally:
            await double.stop()
        return got

    got = asyncio.run(scenario())
    assert got["expires_in"] == 86400
    assert got["set"] == 200
    assert got["limited"] == (429, "3")
    listing = got["listing"]
    assert (listing["pageNumber"], listing["pageCount"], listing["total"]) == (1, 1, 1)
    assert listing["entities"][0]["previewTimeOutSeconds"] == 0
    assert set(got["interactions"]) == {
        "campaign",
        "pendingInteractions",
        "proceedingInteractions",
        "previewingInteractions",
        "interactingInteractions",
        "scheduledInteractions",
    }
    assert got["unknown"] == 400
    assert got["deleted"] == 404
    assert got["no_token"] == 401


def test_faults_the_poller_must_not_believe_on_request() -> None:
    """Over HTTP: {} answers, a campaign's status, a short listing, Retry-After inf, 403."""

    async def scenario() -> dict[str, Any]:
        dialer = Dialer()
        for n in range(150):
            dialer.add_campaign(campaign_entity(f"c-{n}", "A", "preview", "on"))
        double = ApiDouble(dialer, client_id="id", client_secret="pw", clock=lambda: START)  # noqa: S106
        await double.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{double.port}"
        api = f"{base}/api/v2/outbound/campaigns"
        got: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as http:
                basic = {"Authorization": "Basic " + base64.b64encode(b"id:pw").decode()}
                form = {"grant_type": "client_credentials"}
                async with http.post(f"{base}/oauth/token", headers=basic, data=form) as r:
                    bearer = {"Authorization": f"Bearer {(await r.json())['access_token']}"}

                async def switch(**switches: Any) -> None:
                    async with http.post(f"{base}/_double/faults", json=switches) as r:
                        assert r.status == 200

                await switch(empty_answers=1, forbidden=["c-2"])
                async with http.get(f"{api}/c-1/interactions", headers=bearer) as r:
                    got["empty"] = await r.json()
                async with http.get(f"{api}/c-2/interactions", headers=bearer) as r:
                    got["forbidden"] = r.status
                await switch(campaign_status={"id": "c-1", "status": "forced_stopping"})
                async with http.get(f"{api}/c-1", headers=bearer) as r:
                    got["status"] = (await r.json())["campaignStatus"]
                await switch(short_listing=True)
                async with http.get(f"{api}?pageSize=100&pageNumber=2", headers=bearer) as r:
                    got["short"] = await r.json()
                await switch(short_listing=False, no_page_count=True)
                async with http.get(f"{api}?pageSize=100", headers=bearer) as r:
                    got["no_count"] = await r.json()
                await switch(rate_limited=1, retry_after="inf")
                async with http.get(api, headers=bearer) as r:
                    got["limited"] = (r.status, r.headers.get("Retry-After"))
        finally:
            await double.stop()
        return got

    got = asyncio.run(scenario())
    assert got["empty"] == {}
    assert got["forbidden"] == 403
    assert got["status"] == "forced_stopping"
    assert (got["short"]["entities"], got["short"]["pageCount"]) == ([], 2)
    assert "pageCount" not in got["no_count"]
    assert got["limited"] == (429, "inf")
