"""``interaction-consumer poll``: settings, logs, HTTP, producer, API client and poller wired.

Exit status (:mod:`consumer.commands.exits`): 0 after SIGTERM/SIGINT (the round in hand
finished), 2 for a missing or bad setting (named on stderr), 3 when it never connected:
the broker cannot be reached at start or rejects our credentials, or the login endpoint
refuses the client credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, Final

import msgspec

from consumer.commands import exits, options, signals
from consumer.commands.run import new_registry
from consumer.errors import AuthenticationError, BrokerError, LoginRefusedError
from consumer.formats import campaigns
from consumer.genesys.client import PlatformClient
from consumer.genesys.metrics import PollerMetrics
from consumer.genesys.pacer import SystemPacer
from consumer.genesys.poller import Poller
from consumer.kafka.admin import ensure_topics
from consumer.kafka.producer import TopicProducer
from consumer.kafka.readers import ChangelogReader
from consumer.observe import logs
from consumer.observe.http import Handler, HttpServer, Query, Response
from consumer.observe.logs import fields
from consumer.settings.genesys import GenesysSettings
from consumer.settings.schema import ConfigError, Settings

log = logging.getLogger(__name__)

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
    producer = TopicProducer(kafka)
    try:
        if kafka.create_topics:
            await ensure_topics(kafka, [kafka.topic], DEFAULT_PARTITIONS)
            await ensure_topics(kafka, [campaigns.topic_for(kafka.topic)], 1, compact=True)
        await producer.start()
    except AuthenticationError as exc:
        log.error("authentication_failed", extra=fields(error=str(exc)))
        return exits.NOT_CONNECTED
    except BrokerError as exc:
        log.error("broker_unavailable", extra=fields(error=str(exc)))
        return exits.NOT_CONNECTED
    try:
        async with PlatformClient(settings.genesys, metrics) as client:
            # the topic it writes is its memory: read back before the first round
            history = ChangelogReader(kafka, kafka.topic)
            poller = Poller(settings, client, producer, metrics, SystemPacer(), history)
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
                return exits.NOT_CONNECTED
            finally:
                await server.stop()
    finally:
        await producer.stop()
    log.info("stopped", extra=fields(rounds=poller.rounds))
    return exits.OK


# flag -> dotted setting, for the poll command
FLAGS: Final = {
    **options.KAFKA_FLAGS,
    "region": "genesys.region",
    "api_base": "genesys.api_base",
    "login_base": "genesys.login_base",
    "campaign": "genesys.campaigns",
    "interval": "genesys.interval_seconds",
}


def add_parser(commands: Any) -> None:
    """The ``poll`` subcommand and its flags."""
    command = commands.add_parser(
        "poll", help="poll Genesys Cloud's outbound campaign interactions into the topic"
    )
    command.set_defaults(main=main)
    options.config_option(command)
    where = command.add_mutually_exclusive_group()
    where.add_argument("--region", metavar="HOST", help="e.g. mypurecloud.ie: api.HOST")
    where.add_argument("--api-base", metavar="URL", help="the Platform API base URL")
    command.add_argument("--login-base", metavar="URL", help="the login (OAuth) base URL")
    command.add_argument(
        "--campaign",
        action="append",
        metavar="ID",
        help="poll this campaign (repeatable; default: every preview campaign still live)",
    )
    command.add_argument(
        "--interval", type=float, metavar="SECONDS", help="poll each campaign so often"
    )
    command.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    command.add_argument("--topic")
    command.add_argument("--http-port", type=int, metavar="PORT")


def main(args: argparse.Namespace) -> int:
    """``poll``: the settings checked, then the poller until stopped; the exit status."""
    return run(options.settings(args, FLAGS))


def run(settings: Settings) -> int:
    """Check the settings, configure logging and poll until stopped."""
    check(settings.genesys)
    logs.configure(settings.log.level, settings.log.format)
    return asyncio.run(serve(settings))
