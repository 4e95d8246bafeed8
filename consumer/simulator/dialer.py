"""The simulator's traffic served as the Platform API: ``simulate --serve-api HOST:PORT``.

A :class:`SimulatedDialer` feeds :class:`consumer.simulator.traffic.Simulator` snapshots into the
double's :class:`~consumer.testing.apidouble.Dialer` as time goes by, in the campaigns discovery
finds; :func:`serve` runs :class:`~consumer.testing.apidouble.ApiDouble` on it until a signal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import zlib
from typing import Any, Final

from consumer.formats.campaigns import LIVE_STATUSES
from consumer.observe.logs import fields
from consumer.simulator.traffic import Simulator, TrafficSettings
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity

log = logging.getLogger(__name__)

# (id, name, dialing mode, status, previewTimeOutSeconds at speed 1): three preview
# campaigns the poller discovers (one with an auto-place timeout), one it must not (its
# status), one of each other dialing mode
_SIMULATED_CAMPAIGNS: Final = (
    ("campaign-0", "Renewals", "preview", "on", 0),
    ("campaign-1", "Winback", "preview", "on", 120),
    ("campaign-2", "Surveys", "preview", "stopping", 0),
    ("campaign-3", "Archive", "preview", "complete", 0),
    ("campaign-4", "Collections", "power", "on", 0),
    ("campaign-5", "Upsell", "predictive", "on", 0),
    ("campaign-6", "Care", "progressive", "on", 0),
    ("campaign-7", "Reminders", "agentless", "on", 0),
    ("campaign-8", "Partners", "external", "on", 0),
)


def bucket_of(snapshot: dict[str, Any]) -> str | None:
    """The list a snapshot belongs in, or ``None`` once the interaction has ended."""
    conversation = snapshot.get("conversation") or {}
    over = snapshot.get("lastActivePreviewWrapupTime") or conversation.get("endTime")
    if over and not snapshot.get("activePreviewCall"):
        return None
    if snapshot.get("previewConnectedTime"):
        return "interacting"
    if snapshot.get("callPlacedTime"):
        return "proceeding"
    if snapshot.get("previewPopDeliveredTime"):
        return "previewing"
    return "pending"


class SimulatedDialer:
    """Feeds :class:`Simulator` traffic into a :class:`Dialer` as time goes by.

    The simulator's campaigns are replaced by the double's own, one per dialing mode
    (previews spread over the live preview campaigns), so that what discovery finds
    matches what the interactions say. Tombstones and endings make interactions vanish.
    """

    def __init__(self, traffic: TrafficSettings, start: float) -> None:
        # the API writes camelCase JSON; malformed, duplicate and reordered records are
        # the Kafka producers' faults, not the API's
        clean = dataclasses.replace(
            traffic,
            malformed_share=0.0,
            snake_case_share=0.0,
            duplicate_share=0.0,
            out_of_order_share=0.0,
        )
        self.sim = Simulator(clean, start)
        self.dialer = Dialer()
        by_mode: dict[str, list[dict[str, Any]]] = {}
        for cid, name, mode, status, timeout in _SIMULATED_CAMPAIGNS:
            scaled = round(timeout / traffic.speed) if timeout else 0
            entity = campaign_entity(cid, name, mode, status, max(scaled, 1) if timeout else 0)
            self.dialer.add_campaign(entity)
            if status in LIVE_STATUSES:
                by_mode.setdefault(mode, []).append(entity)
        self._by_mode = by_mode

    def advance(self, now: float) -> None:
        """Apply every snapshot due by ``now``."""
        for _, record in self.sim.due(now):
            if record.key is None:
                continue
            if record.value is None:
                self.dialer.end(record.key.decode())
                continue
            snapshot = json.loads(record.value)
            bucket = bucket_of(snapshot)
            if bucket is None:
                self.dialer.end(snapshot["id"])
                continue
            mode = str(snapshot.get("dialingMode", "preview")).lower()
            choices = self._by_mode[mode]
            campaign = choices[zlib.crc32(snapshot["id"].encode()) % len(choices)]
            snapshot["campaign"] = {
                "id": campaign["id"],
                "name": campaign["name"],
                "selfUri": campaign["selfUri"],
            }
            self.dialer.put(campaign["id"], json.dumps(snapshot).encode(), bucket)


async def serve(
    traffic: TrafficSettings,
    host: str,
    port: int,
    client_id: str,
    client_secret: str,
    stop: asyncio.Event,
) -> None:
    """Serve the simulator's traffic as the Platform API until ``stop`` is set."""
    simulated = SimulatedDialer(traffic, time.time())
    double = ApiDouble(
        simulated.dialer,
        client_id=client_id,
        client_secret=client_secret,
        before_answer=simulated.advance,
    )
    await double.start(host, port)
    log.info("api_serving", extra=fields(url=f"http://{host}:{double.port}", client_id=client_id))
    try:
        await stop.wait()
    finally:
        await double.stop()
        log.info("api_stopped", extra=fields(requests=len(double.served)))
