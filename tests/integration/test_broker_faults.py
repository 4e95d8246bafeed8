"""Faults that need a broker of their own: it goes away, an output refuses.

These always run on a ``scripts/kafka-local`` broker started here, whatever broker the
rest of the suite uses, because they stop it and reconfigure it. SASL/SCRAM and TLS, with
a broker of their own too, are in ``test_tls.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.integration.harness import (
    SCRIPT,
    Broker,
    Daemon,
    Sent,
    alerts,
    create_topic,
    local_broker,
    offsets,
    produce,
    read_topic,
    wait_for,
)
from tests.integration.test_daemon import FAST, committed_everything, snapshot


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, dict[str, str]]]:
    """A broker for this module alone, and the environment that drives its script."""
    state = tmp_path_factory.mktemp("own-broker")
    with local_broker(state) as started:
        yield started


def ready_daemon(broker: Broker, tmp_path: Path) -> tuple[str, Daemon]:
    """A new three-partition topic and a ready daemon consuming it."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=3)
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    return topic, daemon


class HeldRecord(threading.Thread):
    """A producer that sends one record while the broker is away, holding it until it returns."""

    def __init__(self, broker: Broker, topic: str, record: Sent, send_at: float) -> None:
        super().__init__(daemon=True)
        self.args = (broker, topic, record, send_at)
        self.error: BaseException | None = None

    def run(self) -> None:
        import asyncio

        from aiokafka import AIOKafkaProducer

        broker, topic, record, send_at = self.args

        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=broker.bootstrap, acks="all", request_timeout_ms=120_000
            )
            await producer.start()
            try:
                await asyncio.sleep(max(0.0, send_at - time.time()))
                assert record.timestamp is not None
                await producer.send_and_wait(
                    topic, record.value, key=record.key, timestamp_ms=int(record.timestamp * 1000)
                )
            finally:
                await producer.stop()

        try:
            asyncio.run(send())
        except BaseException as exc:
            self.error = exc


def test_broker_away_no_false_alarm_the_real_stall_on_return_and_recovery(
    own_broker: tuple[Broker, dict[str, str]], tmp_path: Path
) -> None:
    """Broker away 3-20 s: not ready; b, placed meanwhile, never fires; a does, on return."""
    broker, env = own_broker
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=1)
    settings = {"STALLS_THRESHOLDS": "{ previewing = 10, placed = 60 }"}
    daemon = Daemon(broker, topic, settings).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    t0 = time.time()
    produce(broker, topic, [snapshot(i, created=t0, previewing=t0) for i in ("a", "b")])
    assert committed_everything(broker, topic, daemon.group)
    # b is placed at 5, while the broker is away: its producer holds the record till 20
    placed = snapshot("b", previewing=t0, placed=t0 + 5, connected=t0 + 6)
    holder = HeldRecord(broker, topic, placed, send_at=t0 + 6)
    holder.start()
    time.sleep(max(0.0, t0 + 3 - time.time()))
    down = time.monotonic()
    subprocess.run([str(SCRIPT), "halt"], env=env, check=True, capture_output=True, timeout=60)
    daemon.wait_http("/readyz", lambda status: status == 503, timeout=20)
    noticed = time.monotonic() - down
    time.sleep(max(0.0, t0 + 20 - time.time()))
    assert daemon.process is not None
    assert daemon.process.poll() is None  # still running
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=120)
    back = time.time()
    holder.join(timeout=120)
    assert holder.error is None
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=90)
    recovered = time.monotonic() - down
    later = time.time()  # records produced after the outage flow as before
    produce(broker, topic, [snapshot("after", created=later, previewing=later)])
    got = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda g: {a["interactionId"] for a in alerts(g)} >= {"a", "after"},
        timeout=60,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    assert daemon.stop() == 0
    fired = [a for a in alerts(got) if a["status"] == "firing"]
    (a,) = [f for f in fired if f["interactionId"] == "a"]
    after = datetime.fromisoformat(a["observedAt"].replace("Z", "+00:00")).timestamp() - back
    print(
        f"\nbroker away 3-20 s: not ready after {noticed:.1f}s, ready again {recovered:.1f}s "
        f"after the halt; alerts {[f['interactionId'] for f in fired]}; a {after:.1f}s after "
        "the return"
    )
    assert [f["interactionId"] for f in fired] == ["a", "after"]  # b never fires
    assert -1 < after < 10  # after the broker's return (a second for two clocks), within 10 s


def set_topic_config(broker: Broker, topic: str, name: str, value: str) -> None:
    """Change one topic's configuration."""

    async def alter() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {name: value})]
            )
        finally:
            await admin.close()

    asyncio.run(alter())


def refuse_writes(broker: Broker, topic: str, refuse: bool = True) -> None:
    """Make the broker refuse every record to ``topic`` (too large for it), or stop that."""
    set_topic_config(broker, topic, "max.message.bytes", "64" if refuse else "1048588")


def uncommitted(broker: Broker, topic: str, group: str) -> int:
    """How many records of ``topic`` lie past ``group``'s committed offsets."""
    committed, ends = offsets(broker, topic, group)
    return sum(ends.values()) - sum(committed.get(p, 0) for p in ends)


def test_unavailable_alerts_topic_holds_commits_until_it_recovers(
    own_broker: tuple[Broker, dict[str, str]], tmp_path: Path
) -> None:
    """While the alerts topic refuses writes nothing is committed past them; then all land."""
    broker, _ = own_broker
    topic, daemon = ready_daemon(broker, tmp_path)
    committed_everything(broker, topic, daemon.group, timeout=10)
    refuse_writes(broker, daemon.alerts_topic)
    now = time.time()
    stuck = [f"stuck-{n}" for n in range(6)]
    produce(broker, topic, [snapshot(i, created=now - 2, previewing=now - 1) for i in stuck])
    daemon.wait_http("/readyz", lambda status: status == 503, timeout=30)
    # records arriving while the alerts are refused wait behind them, uncommitted
    produce(broker, topic, [snapshot(f"behind-{n}", created=now) for n in range(5)])
    time.sleep(3)
    held = uncommitted(broker, topic, daemon.group)
    assert held == 5
    refuse_writes(broker, daemon.alerts_topic, refuse=False)
    reported = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: {a["interactionId"] for a in alerts(got)} >= set(stuck),
        timeout=90,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    errors = daemon.metric("dialer_output_errors_total") or 0
    landed = {a["interactionId"] for a in alerts(reported)}
    print(
        f"\nalerts topic refusing: records held uncommitted {held}, delivery errors {errors:.0f}, "
        f"stalls expected {len(stuck)} reported {len(landed)}"
    )
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=30)
    assert daemon.stop() == 0


def test_stop_while_dead_letters_are_refused_leaves_the_record_uncommitted(
    own_broker: tuple[Broker, dict[str, str]], tmp_path: Path
) -> None:
    """Stopped while its dead letter is refused, the bad record stays uncommitted; then lands."""
    broker, _ = own_broker
    topic, daemon = ready_daemon(broker, tmp_path)
    committed_everything(broker, topic, daemon.group, timeout=10)
    refuse_writes(broker, daemon.dead_letter_topic)
    produce(broker, topic, [Sent(b"bad-1", b"not json at all")])
    daemon.wait_http("/readyz", lambda status: status == 503, timeout=30)
    assert daemon.stop() == 0
    held = uncommitted(broker, topic, daemon.group)
    assert held == 1
    refuse_writes(broker, daemon.dead_letter_topic, refuse=False)
    again = Daemon(broker, topic, FAST, group=daemon.group).start(tmp_path / "again.log")
    landed = wait_for(
        lambda: read_topic(broker, daemon.dead_letter_topic, idle=1.0),
        lambda got: any(g.key == b"bad-1" for g in got),
        timeout=60,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    print(f"\nstopped with dead letters refused: held {held}, landed after restart {len(landed)}")
    assert again.stop() == 0
