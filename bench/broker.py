"""The broker a benchmark runs against: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local one.

The local one is ``scripts/kafka-local`` in a state directory of its own, stopped (and
its data removed) when the benchmark ends.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def broker() -> Iterator[str]:
    """Yield a bootstrap address for the duration of the block."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    env = {
        **os.environ,
        "KAFKA_LOCAL_STATE": tempfile.mkdtemp(prefix="interaction-consumer-bench-"),
    }
    script = str(ROOT / "scripts" / "kafka-local")
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, check=True)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, check=False)
