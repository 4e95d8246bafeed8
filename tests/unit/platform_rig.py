"""The Platform API double in process, a simulated pacer, and a fake publisher.

:func:`platform` starts :class:`~consumer.testing.apidouble.ApiDouble` on 127.0.0.1 port 0 (a
real aiohttp server) and a :class:`~consumer.genesys.client.PlatformClient` and
:class:`~consumer.genesys.poller.Poller` on a :class:`SimPacer`, so a minute of polling runs in
an instant while every request still crosses a real socket. :func:`run` runs a test's scenario
on one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.formats import campaigns, heartbeat
from consumer.genesys.client import PlatformClient
from consumer.genesys.metrics import PollerMetrics
from consumer.genesys.poller import Poller
from consumer.settings.load import load_settings
from consumer.settings.schema import Settings
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity
from consumer.testing.fakes import FakeProducer, FakeRecord

CLIENT_ID = "poller-test"
SECRET = "s3cr3t-never-shown"  # noqa: S105 - the test's own made-up secret, looked for in output
START = 1_800_000_000.0
TOPIC = "interactions"
CAMPAIGNS_TOPIC = campaigns.topic_for(TOPIC)


class SimPacer:
    """A pacer whose waits return at once, having moved time on by what was asked."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let others run, as a real wait would


@dataclass
class Published:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int | None


class FakePublisher(FakeProducer):
    """The package's fake producer, seen as the poller's tests look at it."""

    @property
    def refuse(self) -> bool:
        """Every send is refused (its acknowledgement fails)."""
        return self.refuse_all

    @refuse.setter
    def refuse(self, value: bool) -> None:
        self.refuse_all = value

    def on(self, topic: str) -> list[Published]:
        """What was acknowledged on ``topic``, heartbeats excluded."""
        return [
            _seen(r) for r in self.topics.get(topic, []) if not heartbeat.is_heartbeat(r.headers)
        ]

    def heartbeats(self) -> list[Published]:
        """Every heartbeat acknowledged, on any topic."""
        return [
            _seen(r)
            for records in self.topics.values()
            for r in records
            if heartbeat.is_heartbeat(r.headers)
        ]

    def clear(self) -> None:
        """Forget what was sent."""
        self.topics.clear()


def _seen(record: FakeRecord) -> Published:
    return Published(record.topic, record.key, record.value, dict(record.headers), record.partition)


class FakeHistory:
    """Reads a :class:`FakePublisher` topic back as a compacted changelog would keep it."""

    def __init__(self, publisher: FakePublisher, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic
        self.reads = 0

    async def read(
        self, partition: int, progress: Callable[[int], None]
    ) -> dict[bytes, bytes | None]:
        """The latest value per key of ``partition``."""
        self.reads += 1
        records = [r for r in self.publisher.topics.get(self.topic, []) if r.partition == partition]
        progress(len(records))
        return {r.key: r.value for r in records if r.key is not None}


def interaction(iid: str, **extra: Any) -> bytes:
    """A CampaignInteraction object's JSON bytes."""
    return json.dumps({"id": iid, "creationTime": "2026-11-25T10:00:00.000Z", **extra}).encode()


@dataclass
class Platform:
    """Everything a test drives: the double, its dialer, the client, the poller."""

    double: ApiDouble
    dialer: Dialer
    pacer: SimPacer
    client: PlatformClient
    poller: Poller
    publisher: FakePublisher
    registry: CollectorRegistry
    settings: Settings

    def api_requests(self, path_part: str = "/api/") -> list[float]:
        """When the API requests whose path contains ``path_part`` were served."""
        return [s.at for s in self.double.served if path_part in s.path]

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def restart(self) -> Poller:
        """A new poller process on the same topic and API: it rebuilds from the topic."""
        self.registry = CollectorRegistry()
        history = FakeHistory(self.publisher, TOPIC)
        metrics = PollerMetrics(self.registry)
        self.poller = Poller(
            self.settings, self.client, self.publisher, metrics, self.pacer, history
        )
        return self.poller


def settings_for(port: int, **genesys: Any) -> Settings:
    """Settings pointing at a double on ``port``."""
    section = {
        "api_base": f"http://127.0.0.1:{port}",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        **genesys,
    }
    return load_settings(overrides={"genesys": section, "kafka": {"topic": TOPIC}})


@asynccontextmanager
async def platform(
    entities: Iterable[dict[str, Any]] = (), **genesys: Any
) -> AsyncIterator[Platform]:
    """A double showing ``campaigns`` (default: one preview campaign ``c-1``), and a poller."""
    pacer = SimPacer()
    dialer = Dialer()
    for entity in list(entities) or [campaign_entity("c-1", "Renewals", "preview", "on")]:
        dialer.add_campaign(entity)
    double = ApiDouble(dialer, client_id=CLIENT_ID, client_secret=SECRET, clock=pacer.time)
    await double.start("127.0.0.1", 0)
    registry = CollectorRegistry()
    metrics = PollerMetrics(registry)
    settings = settings_for(double.port, **genesys)
    publisher = FakePublisher()
    try:
        async with PlatformClient(settings.genesys, metrics, pacer=pacer) as client:
            poller = Poller(settings, client, publisher, metrics, pacer)
            yield Platform(double, dialer, pacer, client, poller, publisher, registry, settings)
    finally:
        await double.stop()


def run(
    scenario: object, entities: list[dict[str, object]] | None = None, **genesys: object
) -> Platform:
    """Run ``scenario(platform)`` on a fresh double and poller; returns the platform."""

    async def main() -> Platform:
        async with platform(entities or (), **genesys) as p:
            await scenario(p)  # type: ignore[operator]
            return p

    return asyncio.run(main())


def tombstoned(p: Platform) -> list[bytes | None]:
    """The keys of the tombstones published on the interactions topic."""
    return [r.key for r in p.publisher.on(TOPIC) if r.value is None]
