"""The README's main command: the demo shows stalls and dead letters, then stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from tests.integration.harness import ROOT, Broker
from tests.machine import free_port


def test_demo_shows_alerts_and_dead_letters(broker: Broker) -> None:
    """scripts/demo (what make demo runs) prints stall and dead-letter lines and exits 0."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DEMO_SECONDS": "15",
        "DEMO_RATE": "10",
        "DEMO_PORT": str(free_port()),
        "DEMO_TOPIC": "demo-under-test",
    }
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=180
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "stall_firing" in output
    assert "dead_letter" in output
    assert "+1555" not in output  # the simulator's phone numbers never reach the logs


def event(line: str) -> str | None:
    """The event of one of the daemon's text log lines (``time level event key=value...``)."""
    words = line.split()
    return words[2] if len(words) > 2 and words[0][:2].isdigit() else None


def test_demo_shows_heartbeats_and_one_silence_when_the_simulator_dies(broker: Broker) -> None:
    """The demo's metrics count heartbeats; killing its simulator is one source_silent line."""
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix="demo-"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DEMO_RATE": "5",
        "DEMO_PORT": str(port),
        "DEMO_TOPIC": "demo-silence-under-test",
        "TMPDIR": str(logdir),
    }
    demo = subprocess.Popen(
        [str(ROOT / "scripts" / "demo")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: nothing of it outlives the test
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for raw in demo.stdout:  # the daemon's text log, line by line
            lines.append(raw.decode(errors="replace"))
            if event(lines[-1]) == "stall_firing":
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        beats = [
            line for line in metrics.splitlines() if line.startswith("dialer_heartbeats_total")
        ]
        pid = int((logdir / "interaction-consumer-demo" / "simulate.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # the producer dies: no records, no heartbeats
        for raw in demo.stdout:
            lines.append(raw.decode(errors="replace"))
            if event(lines[-1]) == "source_silent":
                break
        demo.send_signal(signal.SIGTERM)  # the script stops what it started, then itself
        for raw in demo.stdout:
            lines.append(raw.decode(errors="replace"))
        assert demo.wait(timeout=60) == -signal.SIGTERM  # after its clean-up (the EXIT trap)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=30)
        demo.stdout.close()
    events = [event(line) for line in lines]
    silent = events.index("source_silent")
    assert float(beats[0].split()[-1]) > 0, beats
    assert events.count("source_silent") == 1
    assert events[silent:].count("stall_firing") <= 2  # not a storm: what was due, at most
