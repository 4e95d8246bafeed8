"""``interaction-consumer run``: wire settings, logs, HTTP and the daemon; handle signals.

Exit status (:mod:`consumer.commands.exits`): 0 after a clean stop (SIGTERM/SIGINT), 2 for
a bad setting (named on stderr), 3 when it never connected to the broker: at once when the
connection cannot be trusted or authenticated (``authentication_failed``), or when stopped
before any broker answered (``not_connected``); the log line names the cause and the
setting. 1 when shutdown overran the grace period. 4 when a background task whose failure
stops the daemon failed (``task_failed``, then ``stopped_by_task``;
:mod:`consumer.daemon.supervise`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
from typing import Any, Final

import msgspec
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from consumer.commands import exits, options, signals
from consumer.daemon.loop import Daemon
from consumer.daemon.policy import stall_policy
from consumer.daemon.ports import AlertSink, SystemClock
from consumer.daemon.supervise import TaskFailedError
from consumer.daemon.topics import ensure_outputs
from consumer.errors import AuthenticationError, BrokerError
from consumer.formats import campaigns
from consumer.formats.alerts import to_alert
from consumer.kafka.admin import ensure_topics
from consumer.kafka.consumer import GroupConsumer, compiled_records
from consumer.kafka.producer import TopicProducer
from consumer.kafka.readers import ChangelogReader, TopicFollower
from consumer.observe import logs
from consumer.observe.http import Handler, HttpServer, Query, Response
from consumer.observe.logs import fields
from consumer.settings.schema import Settings
from consumer.sinks.alertmanager import AlertmanagerSink
from consumer.sinks.log import LogSink
from consumer.sinks.topic import TopicSink

log = logging.getLogger(__name__)

_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"
# /stalled lists this many stalls unless ``limit`` says otherwise, and never more than the
# cap: the listing is built and encoded on the daemon's event loop
# (docs/operate/endpoints-and-metrics.md)
STALLED_LIMIT: Final = 1000
STALLED_MAX_LIMIT: Final = 5000
_ORDERS: Final = ("oldest", "newest")
_COUNT: Final = re.compile(r"[0-9]{1,9}")  # ASCII digits only, and not so many int() refuses
# The Kafka client makes several tracked objects per record, so Python's default young
# collection (every 700 allocations) ran dozens of times a batch, and the records that
# outlived it pushed frequent full collections through every object the imports made:
# 8.6% of a drain's time. The engine's own state is invisible to the collector either way.
YOUNG_COLLECTION_EVERY: Final = 10_000


def routes(daemon: Daemon) -> dict[str, Handler]:
    """The HTTP endpoints but ``/metrics`` (the server serves it), from the daemon's state."""

    def healthz(_: Query) -> Response:
        return 200, "text/plain; charset=utf-8", b"ok\n"  # answering proves the loop runs

    def readyz(_: Query) -> Response:
        problems = daemon.readiness()
        body = msgspec.json.encode({"ready": not problems, "problems": problems})
        return (503 if problems else 200), _JSON, body + b"\n"

    def stalled(query: Query) -> Response:
        limit, order = query.get("limit", str(STALLED_LIMIT)), query.get("order", "oldest")
        if not _COUNT.fullmatch(limit) or not 1 <= int(limit) <= STALLED_MAX_LIMIT:
            return 400, _TEXT, f"limit: a number from 1 to {STALLED_MAX_LIMIT}\n".encode()
        if order not in _ORDERS:
            return 400, _TEXT, f"order: {' or '.join(_ORDERS)}\n".encode()
        stalls = daemon.step.stalled(int(limit), newest=order == "newest")
        listed = [to_alert(event) for event in stalls]
        total = daemon.step.stalled_count()
        body = {"total": total, "limit": int(limit), "order": order, "stalled": listed}
        return 200, _JSON, msgspec.json.encode(body) + b"\n"

    return {"/healthz": healthz, "/readyz": readyz, "/stalled": stalled}


def new_registry() -> CollectorRegistry:
    """A registry with the service's metrics' neighbours: process, platform, GC."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def daemon(settings: Settings, registry: CollectorRegistry) -> Daemon:
    """The daemon wired to Kafka (and Alertmanager, when configured)."""
    collect_for_a_consumer()
    kafka_settings = settings.kafka
    producer = TopicProducer(kafka_settings)
    sinks: list[AlertSink] = [LogSink(), TopicSink(producer, kafka_settings.alerts_topic)]
    if settings.alertmanager.urls:
        sinks.append(AlertmanagerSink(settings.alertmanager, registry, kafka_settings.topic))
    reader = ChangelogReader(kafka_settings, kafka_settings.state_topic_name)
    return Daemon(
        settings,
        registry,
        consumer=GroupConsumer(kafka_settings),
        producer=producer,
        state_reader=reader,
        sinks=sinks,
        clock=SystemClock(),
        prepare=lambda: ensure_outputs(kafka_settings, ensure_topics),
        campaigns=TopicFollower(kafka_settings, campaigns.topic_for(kafka_settings.topic)),
    )


def collect_for_a_consumer() -> None:
    """Tune the garbage collector for a long-running consumer, once the imports are done.

    What exists now lives as long as the process: frozen, full collections skip it. Young
    collections come every :data:`YOUNG_COLLECTION_EVERY` allocations, the older
    generations' pace (relative to the young) unchanged.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


async def serve(settings: Settings) -> int:
    """Run the daemon and its HTTP port until a signal; returns the exit status."""
    registry = new_registry()
    service = daemon(settings, registry)
    http = settings.http
    server = HttpServer(routes(service), http.host, http.port, registry=registry, limits=http)
    await server.start()
    stopped = asyncio.Event()

    def stop() -> None:
        service.stop()
        stopped.set()

    signals.on_stop(stop)
    alertmanagers = [s for s in service.delivery.sinks if isinstance(s, AlertmanagerSink)]
    for sink in alertmanagers:
        # the poster recovers by posting again: restarted after a back-off if it fails
        sink.start(lambda name, run: service.supervisor.start(name, run, "restart"))
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait(
            [task, asyncio.create_task(stopped.wait())], return_when="FIRST_COMPLETED"
        )
        grace = settings.runtime.shutdown_grace_seconds
        done, _ = await asyncio.wait([task], timeout=grace)
        if not done:
            log.error("shutdown_grace_exceeded", extra=fields(grace_seconds=grace))
            task.cancel()
            return exits.GRACE_EXCEEDED
        task.result()  # re-raise what stopped the daemon, if anything did
        return exits.OK
    except AuthenticationError as exc:
        # final: the message names the cause and the setting; a traceback would only bury it
        log.error(
            "authentication_failed",
            extra=fields(cause=exc.cause, setting=exc.setting, error=str(exc)),
        )
        return exits.NOT_CONNECTED
    except BrokerError as exc:
        # stopped before any broker answered: the daemon never ran, for a person to look at
        log.error(
            "not_connected",
            extra=fields(
                cause="no_broker_reachable", setting="kafka.bootstrap_servers", error=str(exc)
            ),
        )
        return exits.NOT_CONNECTED
    except TaskFailedError as exc:
        # the task's own log line has the traceback; this one says why the service ends
        log.error("stopped_by_task", extra=fields(task=exc.task, error=str(exc)))
        return exits.TASK_FAILED
    finally:
        for sink in alertmanagers:
            await sink.stop()
        await server.stop()


def run(settings: Settings) -> int:
    """Configure logging, check the Kafka client, and serve until stopped."""
    logs.configure(settings.log.level, settings.log.format)
    if not compiled_records():
        log.warning(
            "aiokafka_extensions_missing",
            extra=fields(
                impact="pure-Python record parsing and CRC checks cap throughput near 10k/s"
            ),
        )
    return asyncio.run(serve(settings))


def check(settings: Settings) -> None:
    """Raise :class:`~consumer.settings.schema.ConfigError` naming what stops ``run`` at start."""
    stall_policy(settings)  # the stall rules named must exist


def add_parser(commands: Any) -> None:
    """The ``run`` subcommand and its flags."""
    command = commands.add_parser("run", help="consume the topic in a consumer group (the daemon)")
    command.set_defaults(main=main)
    options.engine_options(command)
    command.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    command.add_argument("--topic")
    command.add_argument("--group-id")
    command.add_argument("--http-port", type=int, metavar="PORT")
    command.add_argument("--log-format", choices=["json", "text"])


def main(args: argparse.Namespace) -> int:
    """``run``: the settings checked, then the daemon until stopped; the exit status."""
    settings = options.settings(args)
    check(settings)
    return run(settings)
