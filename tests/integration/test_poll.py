"""The Genesys source on the real broker: the API double -> ``poll`` (a process) -> the topic."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from consumer.engine.model import iso
from consumer.formats import campaigns, heartbeat
from consumer.simulator.traffic import demo_thresholds
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity
from tests.integration.harness import (
    ROOT,
    Broker,
    Daemon,
    Got,
    alerts,
    create_topic,
    read_topic,
    read_until,
    wait_for,
)
from tests.machine import free_port

CLIENT_ID = "it-client"
SECRET = "it-secret-never-logged"  # noqa: S105 - made up for this test, then looked for in the logs


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``interaction-consumer ARGS`` as a process logging to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "consumer", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def http(url: str, body: dict[str, object] | None = None) -> bytes:
    """GET ``url``, or POST ``body`` as JSON to it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as answer:
        read: bytes = answer.read()
        return read


def until(check: object, timeout: float, what: str, log: Path) -> None:
    """Wait until ``check()`` is true; fail with the log tail if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen in {timeout}s:\n{log.read_text()[-4000:]}")


@contextmanager
def serving(log: Path, *traffic: str) -> Iterator[str]:
    """``simulate --serve-api`` on a free port, 20 times faster than life; its base URL."""
    port = free_port()
    env = {"GENESYS_CLIENT_ID": CLIENT_ID, "GENESYS_CLIENT_SECRET": SECRET}
    args = ["simulate", "--serve-api", f"127.0.0.1:{port}", "--speed", "20", *traffic]
    process = start(args, log, env)
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: http(base + "/_double/requests"), 30, "the double", log)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def double(tmp_path: Path) -> Iterator[str]:
    """The double with the simulator's usual traffic (5 interactions a second)."""
    with serving(tmp_path / "double.log", "--rate", "5") as base:
        yield base


def poller_env(broker: Broker, secret: str = SECRET) -> dict[str, str]:
    """The poller's environment: the broker and the credentials."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "GENESYS_CLIENT_ID": CLIENT_ID,
        "GENESYS_CLIENT_SECRET": secret,
        "INTERACTION_CONSUMER_HTTP_HOST": "127.0.0.1",
    }


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of the poller's /metrics (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http(f"http://127.0.0.1:{port}/metrics").decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_poll_publishes_snapshots_tombstones_heartbeats_and_campaigns(
    broker: Broker, topic: str, double: str, tmp_path: Path
) -> None:
    """Records with headers, a tombstone, heartbeats on each partition, campaigns; faults pass."""
    port = free_port()
    log = tmp_path / "poll.log"
    args = ["poll", "--api-base", double, "--interval", "1", "--topic", topic]
    process = start([*args, "--http-port", str(port)], log, poller_env(broker))
    try:
        until(lambda: b'"ready":true' in http(f"http://127.0.0.1:{port}/readyz"), 60, "ready", log)

        def complete(got: list[Got]) -> bool:
            beats = {r.partition for r in got if heartbeat.HEADER in r.headers}
            dead = [r for r in got if r.value is None]
            return beats == {0, 1, 2} and bool(dead)

        got = read_until(broker, topic, complete, timeout=90)
        snapshots = [r for r in got if r.value is not None and heartbeat.HEADER not in r.headers]
        assert snapshots
        for record in snapshots:
            value = json.loads(record.value or b"")
            assert record.key == value["id"].encode()
            assert value["campaign"]["id"] in ("campaign-0", "campaign-1", "campaign-2")
            assert record.headers["genesys.bucket"].decode() in campaigns.BUCKETS
            assert record.headers["genesys.polled.at"].endswith(b"Z")
        assert {r.partition for r in got if heartbeat.HEADER in r.headers} == {0, 1, 2}
        assert any(r.value is None and r.key for r in got)
        beat = heartbeat.decode(next(r.value for r in got if heartbeat.HEADER in r.headers))
        assert beat is not None
        assert beat.source == "genesys-poller"

        settings = {
            r.key: campaigns.decode(r.value)
            for r in read_until(broker, campaigns.topic_for(topic), lambda g: len(g) >= 3, 30)
        }
        assert set(settings) == {b"campaign-0", b"campaign-1", b"campaign-2"}
        winback = settings[b"campaign-1"]
        assert winback is not None
        assert winback.preview_time_out_seconds == 6  # 120 s at 20 times the speed

        # faults: a 429 with Retry-After, then every token expired; polling goes on
        http(double + "/_double/faults", {"rate_limited": 2, "retry_after": 1})
        http(double + "/_double/faults", {"expire_tokens": True})
        until(
            lambda: (
                metric(port, "genesys_poller_requests_total", endpoint="interactions", status="429")
                >= 2
                and metric(port, "genesys_poller_token_renewals_total", reason="unauthorized") >= 1
            ),
            30,
            "429 and 401 handled",
            log,
        )
        beats = metric(port, "genesys_poller_heartbeats_total")
        until(lambda: metric(port, "genesys_poller_heartbeats_total") > beats, 30, "beats", log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert SECRET not in output
    assert "+1555" not in output  # the simulated phone numbers stay in the records
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert "signal" in events
    assert events[-1] == "stopped"


def test_refused_credentials_exit_3_with_a_clear_message(
    broker: Broker, double: str, tmp_path: Path
) -> None:
    """A wrong client secret: the poller says the login was refused and exits 3, secret unshown."""
    log = tmp_path / "poll.log"
    wrong = "wrong-secret-not-shown"  # made up, looked for in the log
    topic = f"refused-{uuid.uuid4().hex[:8]}"
    args = ["poll", "--api-base", double, "--topic", topic, "--http-port", str(free_port())]
    process = start(args, log, poller_env(broker, wrong))
    code = process.wait(timeout=120)
    output = log.read_text()
    assert code == 3, output[-3000:]
    refused = [json.loads(line) for line in output.splitlines() if '"login_refused"' in line]
    assert refused
    assert CLIENT_ID in refused[0]["error"]
    assert wrong not in output


def test_simulator_sends_heartbeats_to_every_partition(broker: Broker) -> None:
    """Simulate --topic sends heartbeats (source simulator) to each partition, about each second."""
    topic = f"simulated-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions=3)
    began = time.time()
    args = ["simulate", "--topic", topic, "--seconds", "2", "--speed", "50"]
    done = subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap},
        capture_output=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]

    def beats_of(got: list[Got]) -> list[Got]:
        return [r for r in got if heartbeat.HEADER in r.headers]

    beats = beats_of(read_until(broker, topic, lambda got: len(beats_of(got)) >= 6, 60))
    assert {r.partition for r in beats} == {0, 1, 2}
    decoded = [heartbeat.decode(r.value) for r in beats]
    assert all(b is not None and b.source == "simulator" for b in decoded)
    assert all(b is not None and b.up_to_epoch >= began - 1 for b in decoded)
    assert len(beats) >= 6  # a round of three every second, for two seconds and the drain


def test_demo_with_the_api_source_shows_alerts(broker: Broker, tmp_path: Path) -> None:
    """The api demo (DEMO_SOURCE=api): double -> poll -> broker -> daemon prints stalls."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DEMO_SOURCE": "api",
        "DEMO_SECONDS": "15",
        "DEMO_RATE": "10",
        "DEMO_PORT": str(free_port()),
        "DEMO_API_PORT": str(free_port()),
        "DEMO_POLL_PORT": str(free_port()),
        "DEMO_TOPIC": f"demo-api-{uuid.uuid4().hex[:8]}",
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "stall_firing" in output
    assert "+1555" not in output
    poll_log = (tmp_path / "interaction-consumer-demo" / "poll.log").read_text()
    assert "campaign_added" in poll_log
    assert "demo-secret" not in poll_log + output


def test_api_to_alerts_end_to_end_with_a_threshold_from_the_campaign(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """The double -> poll -> topic -> daemon: stall alerts, one on its campaign's own timeout."""
    # more interactions, half of the previews stalling: stalls in every campaign soon
    with serving(tmp_path / "double.log", "--rate", "10", "--stall-share", "0.5") as double:
        got, applied = run_end_to_end(broker, topic, double, tmp_path)
    firing = [a for a in alerts(got) if a["status"] == "firing"]
    previewing: dict[str, set[float]] = {}
    for a in firing:
        if a["rule"] == "previewing":
            previewing.setdefault(a["campaignId"], set()).add(a["thresholdSeconds"])
    # before the campaign's record is read, its previews run on the configured threshold
    assert 8 in previewing.pop("campaign-1")
    assert set().union(*previewing.values()) <= {demo_thresholds(20)["previewing"]}
    assert {a["rule"] for a in firing} <= set(demo_thresholds(20))
    assert {e["campaign"]: e["previewing_seconds"] for e in applied}["campaign-1"] == 8


def run_end_to_end(
    broker: Broker, topic: str, double: str, tmp_path: Path
) -> tuple[list[Got], list[dict[str, Any]]]:
    """Poll the double into ``topic`` for the daemon; its alerts and campaign thresholds."""
    log = tmp_path / "poll.log"
    args = ["poll", "--api-base", double, "--interval", "1", "--topic", topic]
    poller = start([*args, "--http-port", str(free_port())], log, poller_env(broker))
    thresholds = demo_thresholds(20)  # the double runs 20 times faster than life
    rules = "{ " + ", ".join(f"{rule} = {seconds}" for rule, seconds in thresholds.items()) + " }"
    daemon = Daemon(
        broker,
        topic,
        {"STALLS_THRESHOLDS": rules, "STALLS_PREVIEW_TIMEOUT_GRACE_SECONDS": "2"},
    ).start(tmp_path / "daemon.log")
    try:
        # campaign-1 auto-places previews after 120 s (6 s at this speed): its previewing
        # threshold is 6 + 2, where the others keep the configured 15 s
        def seen(got: list[Got]) -> bool:
            firing = [a for a in alerts(got) if a["status"] == "firing"]
            own = [
                a for a in firing if a["campaignId"] == "campaign-1" and a["thresholdSeconds"] == 8
            ]
            other = [a for a in firing if a["campaignId"] != "campaign-1"]
            return bool(own) and bool(other)

        got = wait_for(lambda: read_topic(broker, daemon.alerts_topic, idle=1.0), seen, 180)
    finally:
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(timeout=60) == 0
    assert daemon.stop() == 0
    return got, [e for e in daemon.log_events() if e["event"] == "campaign_threshold"]


@contextmanager
def static_double(dialer: Dialer) -> Iterator[str]:
    """The API double in this process (its own thread and loop), showing only ``dialer``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    double = ApiDouble(dialer, client_id=CLIENT_ID, client_secret=SECRET)
    asyncio.run_coroutine_threadsafe(double.start("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{double.port}"
    finally:
        asyncio.run_coroutine_threadsafe(double.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_restarted_poller_tombstones_what_ended_while_it_was_down(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Poller stopped, an interaction ends, poller started: tombstoned in its first rounds."""
    placed = iso(time.time())
    dialer = Dialer()
    dialer.add_campaign(campaign_entity("c-1", "Renewals", "preview", "on"))
    for iid in ("ended", "stuck"):
        body = {"id": iid, "dialingMode": "preview", "activePreviewCall": True}
        body |= {"creationTime": placed, "callPlacedTime": placed}
        dialer.put("c-1", json.dumps(body).encode(), "proceeding")
    daemon = Daemon(broker, topic, {"STALLS_THRESHOLDS": "{ placed = 20 }"})
    log = tmp_path / "poll.log"
    port = free_port()
    with static_double(dialer) as double:
        args = ["poll", "--api-base", double, "--interval", "1", "--topic", topic]
        args += ["--http-port", str(port)]

        def ready() -> bool:
            return b'"ready":true' in http(f"http://127.0.0.1:{port}/readyz")

        def published(got: list[Got]) -> bool:
            return {b"ended", b"stuck"} <= {r.key for r in got if r.value is not None}

        daemon.start(tmp_path / "daemon.log")
        try:
            first = start(args, log, poller_env(broker))
            until(ready, 60, "ready", log)
            read_until(broker, topic, published, timeout=60)
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=60) == 0
            before = {r.partition: r.offset for r in read_topic(broker, topic, idle=1.0)}
            http(double + "/_double/faults", {"end_interaction": "ended"})  # while none polls
            second = start(args, log, poller_env(broker))
            try:
                until(ready, 60, "ready again", log)

                def tombstoned(got: list[Got]) -> bool:
                    return any(r.key == b"ended" and r.value is None for r in got)

                got = read_until(broker, topic, tombstoned, timeout=60)
                # the stuck one fires at its threshold: the daemon judged "ended" meanwhile
                fired = wait_for(
                    lambda: read_topic(broker, daemon.alerts_topic, idle=0.5),
                    lambda a: any(x["interactionId"] == "stuck" for x in alerts(a)),
                    90,
                )
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=60) == 0
        finally:
            assert daemon.stop() == 0
    (dead,) = [r for r in got if r.key == b"ended" and r.value is None]
    after_restart = [
        r for r in got if r.partition == dead.partition and r.offset > before[dead.partition]
    ]
    beats = [r for r in after_restart if r.offset < dead.offset and heartbeat.HEADER in r.headers]
    assert len(beats) <= 1  # in the new process's second round at the latest
    assert [a["interactionId"] for a in alerts(fired) if a["status"] == "firing"] == ["stuck"]
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [e["interactions"] for e in events if e["event"] == "rebuilt"] == [0, 2]
