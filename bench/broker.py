"""The broker a benchmark runs against: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local one.

The local one is ``scripts/kafka-local`` in a state directory of its own, stopped (and
its data removed) when the benchmark ends. Also the daemon's settings for a run on it,
and the broker's processes, to give them cores of their own.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from consumer.settings.load import load_settings
from consumer.settings.schema import Settings

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
) -> Settings:
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
    return load_settings(overrides={"kafka": kafka, **sections})


def local_pids(bootstrap: str) -> set[int]:
    """The processes of this machine listening on the bootstrap address's port (if any).

    Found through ``/proc``: the listening sockets' inodes, then whose descriptors hold
    them. Processes of other users cannot be looked into and are left out.
    """
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                columns = row.split()
                local, state, inode = columns[1], columns[3], columns[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{inode}]")
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                pids.add(int(entry.name))
    return pids


def pin(pid: int, cpus: set[int]) -> None:
    """Keep every thread of process ``pid`` on ``cpus`` (its later threads inherit it).

    A process or thread that ended meanwhile is left alone.
    """
    with suppress(OSError):
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        for task in tasks:
            with suppress(OSError):
                os.sched_setaffinity(int(task.name), cpus)
