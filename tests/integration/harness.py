"""Helpers around a real broker: topics, producing, reading back, the daemon as a process.

Tests are plain synchronous functions; each helper runs its own short asyncio loop with
aiokafka (an independent client from the daemon's point of view: a separate process).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Broker:
    """A running broker: its bootstrap address, and its state dir when we started it."""

    bootstrap: str
    state: Path | None = None


@dataclass(frozen=True)
class Sent:
    """One record to produce: value ``None`` is a tombstone; timestamp in epoch seconds."""

    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    partition: int | None = None


@dataclass(frozen=True)
class Got:
    """One record read back."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def create_topic(
    broker: Broker, name: str, partitions: int, max_message_bytes: int | None = None
) -> None:
    """Create ``name`` with ``partitions`` partitions (and a larger record limit, if asked)."""
    configs = {} if max_message_bytes is None else {"max.message.bytes": str(max_message_bytes)}

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        finally:
            await admin.close()

    asyncio.run(create())


def produce(
    broker: Broker, topic: str, records: Iterable[Sent], max_request_size: int = 1_048_576
) -> None:
    """Produce ``records`` in order and wait until all are acknowledged."""

    async def send_all() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, acks="all", max_request_size=max_request_size
        )
        await producer.start()
        try:
            acks = []
            for r in records:
                ts = None if r.timestamp is None else int(r.timestamp * 1000)
                acks.append(
                    await producer.send(
                        topic, r.value, key=r.key, timestamp_ms=ts, partition=r.partition
                    )
                )
            await asyncio.gather(*acks)
        finally:
            await producer.stop()

    asyncio.run(send_all())


def read_topic(broker: Broker, topic: str, *, idle: float = 2.0) -> list[Got]:
    """Every record on ``topic`` from the start, once nothing new came for ``idle`` seconds."""
    return _read(broker, topic, lambda _, quiet: quiet >= idle)


def read_until(
    broker: Broker, topic: str, done: Callable[[list[Got]], bool], timeout: float
) -> list[Got]:
    """Records of ``topic`` from the start until ``done`` says they are all there, or timeout.

    For topics that are never quiet for long, such as one a source sends heartbeats to.
    """
    deadline = time.monotonic() + timeout
    return _read(broker, topic, lambda got, _: done(got) or time.monotonic() > deadline)


def _read(broker: Broker, topic: str, enough: Callable[[list[Got], float], bool]) -> list[Got]:
    """Read ``topic`` from the start until ``enough(records, seconds quiet)``."""

    async def read() -> list[Got]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[Got] = []
        try:
            quiet_since = time.monotonic()
            while not enough(got, time.monotonic() - quiet_since):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    quiet_since = time.monotonic()
                    got += [
                        Got(r.partition, r.offset, r.key, r.value, dict(r.headers)) for r in records
                    ]
        finally:
            await consumer.stop()
        return got

    return asyncio.run(read())


def wait_for(
    read: Callable[[], list[Got]], done: Callable[[list[Got]], bool], timeout: float
) -> list[Got]:
    """Read until ``done`` says the records are all there, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if done(got) or time.monotonic() > deadline:
            return got


def offsets(broker: Broker, topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offsets of ``group``, end offsets) per partition of ``topic``."""

    async def look() -> tuple[dict[int, int], dict[int, int]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            if not parts:
                await consumer._client.force_metadata_update()
                parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            ends = await consumer.end_offsets(parts)
            committed = {tp.partition: await consumer.committed(tp) for tp in parts}
        finally:
            await consumer.stop()
        return (
            {p: o for p, o in committed.items() if o is not None},
            {tp.partition: o for tp, o in ends.items()},
        )

    return asyncio.run(look())


def alerts(records: list[Got]) -> list[dict[str, Any]]:
    """The alert records among ``records``, decoded."""
    return [json.loads(r.value) for r in records if r.value is not None]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Daemon:
    """``interaction-consumer run`` as a real process, configured through its environment."""

    broker: Broker
    topic: str
    settings: Mapping[str, str] = field(default_factory=dict)
    group: str = field(default_factory=lambda: f"group-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def alerts_topic(self) -> str:
        return f"{self.topic}.alerts"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}.dead-letter"

    def env(self) -> dict[str, str]:
        prefix = "INTERACTION_CONSUMER_"
        base = {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            prefix + "KAFKA_TOPIC": self.topic,
            prefix + "KAFKA_GROUP_ID": self.group,
            prefix + "KAFKA_ALERTS_TOPIC": self.alerts_topic,
            prefix + "KAFKA_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            prefix + "HTTP_HOST": "127.0.0.1",
            prefix + "HTTP_PORT": str(self.port),
            prefix + "RUNTIME_TICK_SECONDS": "0.1",
            prefix + "KAFKA_SESSION_TIMEOUT_MS": "10000",
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
        return {**clean, **base, **{prefix + k: v for k, v in self.settings.items()}}

    def command(self) -> list[str]:
        """The command line of the daemon."""
        return [sys.executable, "-m", "consumer", "run"]

    def start(self, log_path: Path) -> Daemon:
        """Start the process, logging to ``log_path``; returns once it answers HTTP."""
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.wait_http("/healthz", lambda status: status == 200, timeout=60)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of ``GET path`` on the daemon's port."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                status: int = r.status
                return status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def wait_http(self, path: str, ok: Callable[[int], bool], timeout: float) -> bytes:
        """Poll ``path`` until its status satisfies ``ok``; fail with the log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n{self.logs()}")
            try:
                status, body = self.get(path)
                if ok(status):
                    return body
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"{path} not as expected after {timeout}s:\n{self.logs()[-4000:]}")

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's value from a live ``/metrics`` scrape."""
        from prometheus_client.parser import text_string_to_metric_families

        _, body = self.get("/metrics")
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and dict(sample.labels) == dict(labels or {}):
                    return float(sample.value)
        return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process (SIGKILL: kill -9) and wait for its exit status."""
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
        return code

    def logs(self) -> str:
        """Everything the process logged so far."""
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The process's JSON log lines, decoded."""
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]
