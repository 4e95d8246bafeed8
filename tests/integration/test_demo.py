"""The README's main command: the demo shows stalls and dead letters, then stops cleanly."""

from __future__ import annotations

import os
import subprocess

from tests.integration.harness import ROOT, Broker
from tests.machine import free_port


def test_demo_shows_alerts_and_dead_letters(broker: Broker) -> None:
    """scripts/demo (what make demo runs) prints stall and dead-letter lines and exits 0."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DEMO_SECONDS": "25",
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
