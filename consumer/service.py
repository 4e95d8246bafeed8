"""``interaction-consumer run``: wire settings, logs, HTTP and the daemon; handle signals.

Exit status: 0 after a clean stop (SIGTERM/SIGINT), 2 for a bad setting (named on
stderr), 3 when it never connected to the broker: at once when the connection cannot be
trusted or authenticated (``authentication_failed``), or when stopped before any broker
answered (``not_connected``); the log line names the cause and the setting. 1 when
shutdown overran the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Final

import msgspec
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from consumer import config
from consumer.adapters import kafka, logs
from consumer.adapters.http import Handler, HttpServer, Response
from consumer.adapters.logs import fields
from consumer.daemon.loop import Daemon
from consumer.errors import AuthenticationError, BrokerError

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_GRACE_EXCEEDED: Final = 1
EXIT_NOT_CONNECTED: Final = 3
_JSON: Final = "application/json"


def routes(daemon: Daemon, registry: CollectorRegistry) -> dict[str, Handler]:
    """The HTTP endpoints, each answering from the daemon's current state."""

    def metrics() -> Response:
        return 200, CONTENT_TYPE_LATEST, generate_latest(registry)

    def healthz() -> Response:
        return 200, "text/plain; charset=utf-8", b"ok\n"  # answering proves the loop runs

    def readyz() -> Response:
        problems = daemon.readiness()
        body = msgspec.json.encode({"ready": not problems, "problems": problems})
        return (503 if problems else 200), _JSON, body + b"\n"

    def stalled() -> Response:
        return 200, _JSON, msgspec.json.encode(daemon.stalled()) + b"\n"

    return {"/metrics": metrics, "/healthz": healthz, "/readyz": readyz, "/stalled": stalled}


def new_registry() -> CollectorRegistry:
    """A registry with the service's metrics' neighbours: process, platform, GC."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


async def serve(settings: config.Settings) -> int:
    """Run the daemon and its HTTP port until a signal; returns the exit status."""
    registry = new_registry()
    daemon = Daemon(settings, registry)
    server = HttpServer(routes(daemon, registry), settings.http.host, settings.http.port)
    await server.start()
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal(name: str) -> None:
        log.info("signal", extra=fields(signal=name))
        daemon.stop()
        stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait(
            [task, asyncio.create_task(stopped.wait())], return_when="FIRST_COMPLETED"
        )
        grace = settings.runtime.shutdown_grace_seconds
        done, _ = await asyncio.wait([task], timeout=grace)
        if not done:
            log.error("shutdown_grace_exceeded", extra=fields(grace_seconds=grace))
            task.cancel()
            return EXIT_GRACE_EXCEEDED
        task.result()  # re-raise what stopped the daemon, if anything did
        return EXIT_OK
    except AuthenticationError as exc:
        # final: the message names the cause and the setting; a traceback would only bury it
        log.error(
            "authentication_failed",
            extra=fields(cause=exc.cause, setting=exc.setting, error=str(exc)),
        )
        return EXIT_NOT_CONNECTED
    except BrokerError as exc:
        # stopped before any broker answered: the daemon never ran, for a person to look at
        log.error(
            "not_connected",
            extra=fields(
                cause="no_broker_reachable", setting="kafka.bootstrap_servers", error=str(exc)
            ),
        )
        return EXIT_NOT_CONNECTED
    finally:
        await server.stop()


def run(settings: config.Settings) -> int:
    """Configure logging, check the Kafka client, and serve until stopped."""
    logs.configure(settings.log.level, settings.log.format)
    if not kafka.compiled_records():
        log.warning(
            "aiokafka_extensions_missing",
            extra=fields(
                impact="pure-Python record parsing and CRC checks cap throughput near 10k/s"
            ),
        )
    return asyncio.run(serve(settings))
