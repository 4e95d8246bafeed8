"""A double of the Genesys Cloud Platform API: what ``poll`` reads, faults included.

``interaction-consumer simulate --serve-api HOST:PORT`` serves the simulator's traffic
through it (:mod:`consumer.simulator.dialer`); tests run it in process on port 0 and set its
state directly. It answers in the Platform API's shape and spelling (see
``shared/genesys-api.md``):

* ``POST /oauth/token``: client credentials (HTTP Basic, ``grant_type`` form field);
  ``{"access_token", "token_type": "bearer", "expires_in"}``, 401 ``invalid_client``
  for other credentials;
* ``GET /api/v2/outbound/campaigns?pageSize&pageNumber``: the campaigns, paged
  (``entities``, ``pageSize``, ``pageNumber``, ``total``, ``pageCount``, URIs);
* ``GET /api/v2/outbound/campaigns/{id}``: one campaign;
* ``GET /api/v2/outbound/campaigns/{id}/interactions``: ``campaign`` and the five lists,
  each live interaction's latest snapshot in its bucket; ended ones are gone.

API requests need a bearer token that has not expired. :class:`Faults` are the switches
tests flip (in process, or as JSON to ``POST /_double/faults``): the next N requests
answer 429 (with or without ``Retry-After``) or 503, every token issued so far expires
(401), the login refuses, a campaign is deleted (404); and the answers the poller must
not take for proof that something is gone: interactions answers without the lists
(``{}``), a campaign listing cut short (empty pages after the first) or without
``pageCount``, a campaign that answers 403 (a division change), a campaign's status
(``forced_stopping``...), a ``Retry-After`` of any text (``inf``). ``GET
/_double/requests`` lists the requests served, for counting.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from consumer.formats.campaigns import BUCKETS

log = logging.getLogger(__name__)

CAMPAIGNS_PATH: Final = "/api/v2/outbound/campaigns"
MAX_PAGE_SIZE: Final = 100
_LIST_NAMES: Final = {bucket: f"{bucket}Interactions" for bucket in BUCKETS}


@dataclass
class Faults:
    """Switches for the failures the poller must survive."""

    rate_limited: int = 0  # the next N API requests answer 429 ...
    retry_after: float | str | None = None  # ... with this Retry-After (None: no header)
    unavailable: int = 0  # the next N API requests answer 503
    refuse_login: bool = False  # the token endpoint answers 401 invalid_client
    token_seconds: float = 86_400.0  # expires_in of the tokens issued
    empty_answers: int = 0  # the next N interactions answers are 200 ``{}``
    short_listing: bool = False  # campaign pages after the first come back empty
    no_page_count: bool = False  # campaign pages come without ``pageCount``
    forbidden: list[str] = field(default_factory=list)  # campaigns answering 403


@dataclass
class Served:
    """One request served: when, what, and the status answered."""

    at: float
    method: str
    path: str
    status: int


def campaign_entity(
    campaign_id: str, name: str, mode: str, status: str, preview_timeout: int = 0
) -> dict[str, Any]:
    """A ``Campaign`` as the Platform API writes it (the fields that matter, and some more)."""
    ref = "/api/v2/outbound"
    return {
        "id": campaign_id,
        "name": name,
        "version": 1,
        "contactList": {"id": "list-1", "selfUri": f"{ref}/contactlists/list-1"},
        "queue": {"id": "queue-0", "selfUri": "/api/v2/routing/queues/queue-0"},
        "dialingMode": mode,
        "campaignStatus": status,
        "phoneColumns": [{"columnName": "phone", "type": "cell"}],
        "abandonRate": 5.0,
        "dncLists": [],
        "callerName": "Example Outbound",
        "callerAddress": "+15550000000",
        "outboundLineCount": 10,
        "skipPreviewDisabled": False,
        "previewTimeOutSeconds": preview_timeout,
        "previewAutoEnd": False,
        "alwaysRunning": False,
        "noAnswerTimeout": 30,
        "priority": 5,
        "division": {
            "id": "home",
            "name": "Home",
            "selfUri": "/api/v2/authorization/divisions/home",
        },
        "selfUri": f"{ref}/campaigns/{campaign_id}",
    }


@dataclass
class Dialer:
    """What the double shows: campaigns, and each campaign's live interactions.

    ``interactions[campaign id][interaction id]`` is (bucket, the object's JSON bytes).
    """

    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    interactions: dict[str, dict[str, tuple[str, bytes]]] = field(default_factory=dict)

    def add_campaign(self, entity: dict[str, Any]) -> None:
        """Show a campaign (a :func:`campaign_entity`)."""
        self.campaigns[entity["id"]] = entity
        self.interactions.setdefault(entity["id"], {})

    def put(self, campaign_id: str, interaction: bytes, bucket: str) -> None:
        """Show ``interaction`` (JSON object bytes with an ``id``) in ``bucket``."""
        iid = json.loads(interaction)["id"]
        for shown in self.interactions.values():
            shown.pop(iid, None)
        self.interactions.setdefault(campaign_id, {})[iid] = (bucket, interaction)

    def end(self, interaction_id: str) -> None:
        """The interaction ended: it is in no list any more."""
        for shown in self.interactions.values():
            shown.pop(interaction_id, None)

    def set_status(self, campaign_id: str, status: str) -> None:
        """The campaign's ``campaignStatus`` becomes ``status`` (its interactions stay)."""
        self.campaigns[campaign_id]["campaignStatus"] = status

    def delete_campaign(self, campaign_id: str) -> None:
        """The campaign is deleted: it answers 404 from now on."""
        self.campaigns.pop(campaign_id, None)
        self.interactions.pop(campaign_id, None)


class ApiDouble:
    """The Platform API double on aiohttp.web; ``port`` 0 picks a free port."""

    def __init__(
        self,
        dialer: Dialer,
        *,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float] = time.time,
        before_answer: Callable[[float], None] | None = None,
    ) -> None:
        self.dialer = dialer
        self.faults = Faults()
        self.served: list[Served] = []
        self._credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._clock = clock
        self._before_answer = before_answer  # moves a simulated dialer to the present
        self._tokens: dict[str, float] = {}  # token -> expiry
        self._runner: web.AppRunner | None = None
        self.port = 0

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (the API answers 401)."""
        self._tokens.clear()

    def app(self) -> web.Application:
        """The routes."""
        app = web.Application(middlewares=[self._count])
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get(CAMPAIGNS_PATH, self._campaigns)
        app.router.add_get(CAMPAIGNS_PATH + "/{id}", self._campaign)
        app.router.add_get(CAMPAIGNS_PATH + "/{id}/interactions", self._interactions)
        app.router.add_post("/_double/faults", self._set_faults)
        app.router.add_get("/_double/requests", self._requests)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers --------------------------------------------------------------------------

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith("/_double/"):
            self.served.append(Served(self._clock(), request.method, request.path, response.status))
        return response

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        basic = request.headers.get("Authorization", "")
        if self.faults.refuse_login or basic != f"Basic {self._credentials}":
            return _json(401, {"error": "invalid_client", "description": "client not found"})
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self._clock() + self.faults.token_seconds
        return _json(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": round(self.faults.token_seconds),
            },
        )

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer of a fault or a missing token, if the request gets one."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self._tokens.get(token, 0.0) <= self._clock():
            return _error(401, "authentication.required", "Authentication failed.")
        if self.faults.rate_limited > 0:
            self.faults.rate_limited -= 1
            response = _error(429, "too.many.requests", "Rate limit exceeded the maximum.")
            asked = self.faults.retry_after
            if asked is not None:
                response.headers["Retry-After"] = asked if isinstance(asked, str) else f"{asked:g}"
            return response
        if self.faults.unavailable > 0:
            self.faults.unavailable -= 1
            return _error(503, "service.unavailable", "Service Unavailable")
        campaign_id = request.match_info.get("id")
        if campaign_id is not None and campaign_id in self.faults.forbidden:
            return _error(403, "not.authorized", "You are not authorized to perform the operation.")
        if self._before_answer is not None:
            self._before_answer(self._clock())
        return None

    async def _campaigns(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            size = int(request.query.get("pageSize", "25"))
            number = int(request.query.get("pageNumber", "1"))
        except ValueError:
            return _error(400, "bad.request", "pageSize and pageNumber are numbers")
        if not 1 <= size <= MAX_PAGE_SIZE or number < 1:
            return _error(400, "bad.request", f"pageSize is 1 to {MAX_PAGE_SIZE}")
        every = list(self.dialer.campaigns.values())
        count = max(1, -(-len(every) // size))
        page = every[(number - 1) * size : number * size]
        if self.faults.short_listing and number > 1:
            page = []

        def uri(n: int) -> str:
            return f"{CAMPAIGNS_PATH}?pageSize={size}&pageNumber={n}"

        listing: dict[str, Any] = {
            "entities": page,
            "pageSize": size,
            "pageNumber": number,
            "total": len(every),
            "firstUri": uri(1),
            "selfUri": uri(number),
            "lastUri": uri(count),
            "pageCount": count,
        }
        if self.faults.no_page_count:
            del listing["pageCount"]
        if number < count:
            listing["nextUri"] = uri(number + 1)
        return _json(200, listing)

    async def _campaign(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        campaign = self.dialer.campaigns.get(request.match_info["id"])
        if campaign is None:
            return _error(404, "not.found", "The campaign was not found.")
        return _json(200, campaign)

    async def _interactions(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        campaign_id = request.match_info["id"]
        campaign = self.dialer.campaigns.get(campaign_id)
        if campaign is None:
            return _error(404, "not.found", "The campaign was not found.")
        if self.faults.empty_answers > 0:
            self.faults.empty_answers -= 1
            return _json(200, {})  # every member of CampaignInteractions is optional
        ref = {"id": campaign_id, "name": campaign["name"], "selfUri": campaign["selfUri"]}
        lists: dict[str, list[bytes]] = {bucket: [] for bucket in BUCKETS}
        for bucket, value in self.dialer.interactions.get(campaign_id, {}).values():
            lists[bucket].append(value)
        # assembled from the stored bytes: each interaction is served exactly as stored
        parts = [b'"campaign":' + msgspec.json.encode(ref)]
        parts += [
            f'"{_LIST_NAMES[bucket]}":['.encode() + b",".join(values) + b"]"
            for bucket, values in lists.items()
        ]
        return web.Response(
            status=200, body=b"{" + b",".join(parts) + b"}", content_type="application/json"
        )

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            asked = await request.json()
            for name, value in asked.items():
                if name == "expire_tokens":
                    self.expire_tokens()
                elif name == "delete_campaign":
                    self.dialer.delete_campaign(str(value))
                elif name == "campaign_status":  # {"id": ..., "status": ...}
                    self.dialer.set_status(str(value["id"]), str(value["status"]))
                elif name == "end_interaction":
                    self.dialer.end(str(value))
                elif hasattr(self.faults, name):
                    setattr(self.faults, name, value)
                else:
                    return _json(400, {"error": f"unknown switch {name!r}"})
        except (ValueError, AttributeError, KeyError, TypeError):
            return _json(400, {"error": "expected a JSON object of switches"})
        return _json(200, {"faults": self.faults.__dict__})

    async def _requests(self, _: web.Request) -> web.Response:
        return _json(200, [s.__dict__ for s in self.served])


def _json(status: int, body: Any) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(body), content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    """An error answer in the Platform API's shape."""
    return _json(
        status, {"message": message, "code": code, "status": status, "contextId": "double"}
    )
