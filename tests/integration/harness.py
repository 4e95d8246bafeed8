"""Helpers around a real broker: topics, producing, reading back, the daemon as a process.

Tests are plain synchronous functions; each helper runs its own short asyncio loop with
aiokafka (an independent client from the daemon's point of view: a separate process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.machine import free_port

ROOT = Path(__file__).resolve().parents[2]
# every daemon process started by a test, so that one a failed test left running is reaped
STARTED: list[Daemon] = []


SCRIPT = ROOT / "scripts" / "kafka-local"


@dataclass(frozen=True)
class Broker:
    """A running broker: its bootstrap address, and its state dir when we started it."""

    bootstrap: str
    state: Path | None = None

    def listener(self, name: str) -> str:
        """A listener's address (``sasl``, ``ssl``, ``sasl-ssl``, ``misnamed``, ``oauth``).

        ``ssl-cafile`` gives the CA; all as ``scripts/kafka-local`` wrote them in its state.
        """
        assert self.state is not None, "only a broker started by scripts/kafka-local has these"
        file = self.state / (name if name == "ssl-cafile" else f"{name}-bootstrap")
        return file.read_text().strip()


def unavailable(reason: str) -> NoReturn:
    """No broker for these tests: fail under CI (``CI=true``), else skip with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"no Kafka broker for the integration tests under CI: {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


@contextlib.contextmanager
def local_broker(state: Path, **settings: str) -> Iterator[tuple[Broker, dict[str, str]]]:
    """A ``scripts/kafka-local`` broker in ``state``, stopped afterwards.

    ``settings`` are the script's ``KAFKA_LOCAL_*`` variables (TLS, SCRAM, port); yields the
    broker and the environment that drives the script for it (to halt and start it again).
    """
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_LOCAL_PORT"}
    env.update(settings, KAFKA_LOCAL_STATE=str(state))
    started = subprocess.run(
        [str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        unavailable(f"scripts/kafka-local could not start a broker:\n{started.stderr[-3000:]}")
    try:
        yield Broker(started.stdout.strip().splitlines()[-1], state=state), env
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Sent:
    """One record to produce: value ``None`` is a tombstone; timestamp in epoch seconds."""

    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


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
                        topic,
                        r.value,
                        key=r.key,
                        timestamp_ms=ts,
                        partition=r.partition,
                        headers=list(r.headers) or None,
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
        STARTED.append(self)
        self.process = subprocess.Popen(
            self.command(),
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.wait_http("/healthz", lambda status: status == 200, timeout=60)
        return self

    def run(self, log_path: Path, timeout: float = 120) -> int:
        """Run the process until it exits by itself (a start meant to fail); its exit status."""
        self.log_path = log_path
        with log_path.open("wb") as log:
            exited = subprocess.run(
                self.command(),
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                timeout=timeout,
                check=False,
            )
        return exited.returncode

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
        self.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
        return code

    def reap(self) -> None:
        """Kill the process if it still runs and close its log (after a failed test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self._log is not None and not self._log.closed:
            self._log.close()

    def wait_log(self, event: str, timeout: float) -> dict[str, Any]:
        """The first log line with ``event``, once the process has written it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.log_events() if e["event"] == event]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no {event} logged after {timeout}s:\n{self.logs()[-4000:]}")

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the daemon's process."""
        assert self.process is not None
        self.process.send_signal(sig)

    def logs(self) -> str:
        """Everything the process logged so far."""
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The process's JSON log lines, decoded (a line still being written is left out)."""
        lines = self.logs().splitlines(keepends=True)
        return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("\n")]
