"""The broker a benchmark runs against: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local one.

The local one is ``scripts/kafka-local`` in a state directory of its own, stopped (and
its data removed) when the benchmark ends. Also the daemon's settings for a run on it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consumer import config, config_load

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


def service_settings(
    bootstrap: str, topic: str, kafka: Mapping[str, Any] | None = None, **sections: Any
) -> config.Settings:
    """Default settings reading ``topic``, in a fresh group with outputs of its own.

    ``kafka`` sets further ``[kafka]`` settings, ``sections`` whole other sections.
    """
    group = f"bench-{uuid.uuid4().hex[:8]}"
    kafka = {
        **(kafka or {}),
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "group_id": group,
        "alerts_topic": f"{group}.alerts",
        "dead_letter_topic": f"{group}.dead-letter",
    }
    return config_load.load_settings(overrides={"kafka": kafka, **sections})
