"""A daemon on the shipped fakes: no broker, a clock moved by hand, milliseconds a test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.daemon.loop import Daemon
from consumer.daemon.ports import AlertSink
from consumer.engine.model import WIRE_TIMES, iso
from consumer.formats import heartbeat
from consumer.settings.load import load_settings
from consumer.settings.schema import Settings
from consumer.sinks.topic import TopicSink
from consumer.testing.fakes import (
    FakeClock,
    FakeConsumer,
    FakeFollower,
    FakeProducer,
    FakeStateReader,
)

TOPIC = "interactions"
ALERTS = "interactions.alerts"
DEAD = "interactions.dead-letter"
STATE = "group.state"
T0 = 1_800_000_000.0


def settings(**sections: Any) -> Settings:
    """Small thresholds and fast retries; ``sections`` override (TOML-shaped dicts)."""
    base: dict[str, Any] = {
        "kafka": {
            "topic": TOPIC,
            "group_id": "group",
            "alerts_topic": ALERTS,
            "dead_letter_topic": DEAD,
        },
        "stalls": {"thresholds": {"created": 10, "previewing": 10, "placed": 10}},
        "runtime": {"tick_seconds": 0.01, "output_retry_max_seconds": 0.02},
    }
    for name, section in sections.items():
        base[name] = {**base.get(name, {}), **section}
    return load_settings(overrides=base)


def preview(
    iid: str, *, active: bool | None = True, mode: str = "preview", **offsets: float
) -> bytes:
    """A camelCase snapshot (a preview, unless ``mode``) with stage times at ``T0 + offset``."""
    body: dict[str, Any] = {
        "id": iid,
        "dialingMode": mode,
        "activePreviewCall": active,
        "campaign": {"id": "c-1"},
    }
    for stage, offset in offsets.items():
        body[WIRE_TIMES[stage]] = iso(T0 + offset)
    return json.dumps(body).encode()


def beat(up_to: float, source: str = "poller") -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """A heartbeat value and its headers, vouching for ``T0 + up_to``."""
    value = heartbeat.encode(source, T0 + up_to, 1.0)
    return value, ((heartbeat.HEADER, source.encode()),)


@dataclass
class Rig:
    """One input topic, one producer, a clock: daemons come and go on them (restarts)."""

    partitions: int = 1
    config: Settings = field(default_factory=settings)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    producer: FakeProducer = field(default_factory=FakeProducer)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    campaigns: FakeFollower = field(default_factory=FakeFollower)

    def __post_init__(self) -> None:
        self.consumer = FakeConsumer(TOPIC, self.clock, self.partitions)

    def daemon(self, *sinks: AlertSink) -> Daemon:
        """A new daemon instance on this rig (a restart keeps the topic and the changelog).

        Its alerts go to the alerts topic, and to ``sinks`` too.
        """
        self.registry = CollectorRegistry()
        return Daemon(
            self.config,
            self.registry,
            consumer=self.consumer,
            producer=self.producer,
            state_reader=FakeStateReader(self.producer, STATE),
            sinks=[TopicSink(self.producer, ALERTS), *sinks],
            clock=self.clock,
            campaigns=self.campaigns,
        )

    def send(self, value: bytes | None, *, key: str, at: float, partition: int = 0) -> int:
        """Produce to the input at ``T0 + at``; returns the offset."""
        return self.consumer.produce(
            value, key=key.encode(), timestamp=T0 + at, partition=partition
        )

    def alerts(self) -> list[tuple[str, str, str]]:
        """(interaction or source, status, rule) of every acknowledged alert, in order."""
        found = []
        for value in self.producer.values(ALERTS):
            assert value is not None
            alert = json.loads(value)
            who = alert.get("interactionId") or alert["sourceId"]
            found.append((who, alert["status"], alert["rule"]))
        return found

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample of the current daemon's registry (0 when absent)."""
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (in real time) until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


async def drain(daemon: Daemon) -> None:
    """Run until everything there is was applied and delivered, then stop."""
    await asyncio.wait_for(daemon.run(until_idle=True), 10)
