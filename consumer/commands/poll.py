"""``interaction-consumer poll``: settings, logs, HTTP, producer, API client and poller wired.

Exit status: 0 after SIGTERM/SIGINT (the round in hand finished), 2 for a missing or bad
setting (named on stderr), 3 when the login endpoint refuses the client credentials or
the broker rejects ours, 1 when the broker cannot be reached at start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import msgspec

from consumer.commands import signals
from consumer.commands.run import new_registry
from consumer.errors import AuthenticationError, BrokerError, LoginRefusedError
from consumer.formats import campaigns
from consumer.genesys.client import PlatformClient
from consumer.genesys.pacer import SystemPacer
from consumer.genesys.poller import Poller
from consumer.kafka.clients import ChangelogReader, Sink, ensure_topics
from consumer.observe import logs
from consumer.observe.http import Handler, HttpServer, Query, Response
from consumer.observe.logs import fields
from consumer.observe.metrics import PollerMetrics
from consumer.settings.genesys import GenesysSettings
from consumer.settings.schema import ConfigError, Settings

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_BROKER: Final = 1
EXIT_REFUSED: Final = 3
# the interactions topic, when poll creates it; the daemon's SIZING.md says how to size one
DEFAULT_PARTITIONS: Final = 3


def check(settings: GenesysSettings) -> None:
    """Raise :class:`~consumer.settings.schema.ConfigError` naming what ``poll`` lacks to start."""
    if settings.api_url is None:
        raise ConfigError("genesys.region or genesys.api_base: one is needed (--region)")
    if not settings.client_id:
        raise ConfigError("genesys.client_id: not set (GENESYS_CLIENT_ID)")
    if not settings.client_secret:
        raise ConfigError("genesys.client_secret: not set (GENESYS_CLIENT_SECRET)")


def routes(poller: Poller) -> dict[str, Handler]:
    """``/healthz`` and ``/readyz`` of the poller (the server serves ``/metrics`` itself)."""

    def healthz(_: Query) -> Response:
        return 200, "text/plain; charset=utf-8", b"ok\n"  # answering proves the loop runs

    def readyz(_: Query) -> Response:
        problems = poller.readiness()
        body = msgspec.json.encode({"ready": not problems, "problems": problems})
        return (503 if problems else 200), "application/json", body + b"\n"

    return {"/healthz": healthz, "/readyz": readyz}


async def serve(settings: Settings) -> int:
    """Poll until a signal; returns the exit status."""
    registry = new_registry()
    metrics = PollerMetrics(registry)
    kafka = settings.kafka
    sink = Sink(kafka)
    try:
        if kafka.create_topics:
            await ensure_topics(kafka, [kafka.topic], DEFAULT_PARTITIONS)
            await ensure_topics(kafka, [campaigns.topic_for(kafka.topic)], 1, compact=True)
        await sink.start()
    except AuthenticationError as exc:
        log.error("authentication_failed", extra=fields(error=str(exc)))
        return EXIT_REFUSED
    except BrokerError as exc:
        log.error("broker_unavailable", extra=fields(error=str(exc)))
        return EXIT_BROKER
    try:
        async with PlatformClient(settings.genesys, metrics) as client:
            # the topic it writes is its memory: read back before the first round
            history = ChangelogReader(kafka, kafka.topic)
            poller = Poller(settings, client, sink, metrics, SystemPacer(), history)
            http = settings.http
            server = HttpServer(
                routes(poller), http.host, http.port, registry=registry, limits=http
            )
            await server.start()
            signals.on_stop(poller.stop)
            log.info(
                "polling",
                extra=fields(
                    api=client.api_url,
                    topic=kafka.topic,
                    interval_seconds=settings.genesys.interval_seconds,
                    campaigns=settings.genesys.campaigns or "discovered",
                ),
            )
            try:
                await poller.run()
            except LoginRefusedError as exc:
                log.error("login_refused", extra=fields(error=str(exc)))
                return EXIT_REFUSED
            finally:
                await server.stop()
    finally:
        await sink.stop()
    log.info("stopped", extra=fields(rounds=poller.rounds))
    return EXIT_OK


def run(settings: Settings) -> int:
    """Check the settings, configure logging and poll until stopped."""
    check(settings.genesys)
    logs.configure(settings.log.level, settings.log.format)
    return asyncio.run(serve(settings))
