"""Memory: bytes of state per tracked interaction, and garbage-collection pauses, at scale.

For each size, a fresh process (so figures do not bleed between sizes) builds a tracker
and measures its resident set size (``VmRSS``) idle, then after SIZE distinct realistic
interactions were applied (previews popped and not yet placed, or calls placed: all
live, most with a stall timer running), and reports the difference per interaction.
With them loaded, it applies 200k more snapshots moving existing interactions on, timing
every automatic garbage collection (``gc.callbacks``), then one forced full collection.
No broker is involved.

    .venv/bin/python -m bench.memory [SIZE ...]      (default: 100000 1000000)
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from typing import Any

from consumer.lifecycle import Snapshot
from consumer.stalls import StallPolicy
from consumer.tracker import Limits, Observations, Tracker

T0 = 1_795_600_000.0
UPDATES = 200_000
BYTES_TARGET = 300
PAUSE_TARGET_MS = 20.0


def rss() -> int:
    """Resident set size of the running process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def snapshot(n: int, step: int) -> Snapshot:
    """Interaction ``n`` at lifecycle step 0 (previewing) or 1 (placed), as decoded."""
    created = T0 + n * 0.001
    times = (created, created + 1, None if step == 0 else created + 30, None, None, None)
    return Snapshot(
        interaction_id=f"sim-1-{n:07d}",
        campaign_id=f"campaign-{n % 20}",
        campaign_name=f"Campaign {n % 20}",
        agent_id=f"agent-{n % 300:03d}",
        queue_id=f"queue-{n % 3}",
        dialing_mode="preview" if n % 10 < 6 else "power",
        active=True,
        times=times,
    )


def measure(size: int) -> dict[str, Any]:
    """Load ``size`` interactions, then time collections while updating them."""
    tracker = Tracker(StallPolicy(), Limits(max_interactions=size + 1), Observations())
    gc.collect()
    idle = rss()
    now = T0
    for n in range(size):
        now = T0 + n * 0.001 + 1
        tracker.apply(snapshot(n, 0), now)
        if n % 5000 == 0:  # as the daemon does after each batch
            tracker.take_dirty()
            tracker.obs.drain()
    tracker.take_dirty()
    tracker.obs.drain()
    gc.collect()
    loaded = rss()

    pauses: list[tuple[float, int]] = []
    began = 0.0

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal began
        if phase == "start":
            began = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - began, info["generation"]))

    gc.callbacks.append(timed)
    for n in range(0, size, max(1, size // UPDATES)):
        tracker.apply(snapshot(n, 1), now)
        if n % 5000 == 0:
            tracker.take_dirty()
            tracker.obs.drain()
    gc.callbacks.remove(timed)
    longest, generation = max(pauses, default=(0.0, -1))
    started = time.perf_counter()
    gc.collect()
    forced = time.perf_counter() - started
    return {
        "size": size,
        "tracked": len(tracker),
        "idle_mb": idle / 2**20,
        "loaded_mb": loaded / 2**20,
        "bytes_per_interaction": (loaded - idle) / size,
        "collections": len(pauses),
        "longest_pause_ms": longest * 1000,
        "longest_pause_generation": generation,
        "forced_full_ms": forced * 1000,
    }


def main() -> None:
    """Measure each size in a process of its own and print the table."""
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    print("memory benchmark: tracker state, one fresh process per size")
    print(
        "  tracked    | idle RSS | loaded RSS | bytes/interaction | GC runs | longest GC pause"
        " | forced full GC"
    )
    for size in sizes:
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--one", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout)
        print(
            f"  {r['tracked']:>10,} | {r['idle_mb']:6.0f} MB | {r['loaded_mb']:7.0f} MB  | "
            f"{r['bytes_per_interaction']:>8.0f} (/{BYTES_TARGET}: "
            f"{r['bytes_per_interaction'] / BYTES_TARGET:.1f}x) | {r['collections']:>7} | "
            f"{r['longest_pause_ms']:7.1f} ms (gen {r['longest_pause_generation']}) | "
            f"{r['forced_full_ms']:6.1f} ms"
        )
    print(
        f"  targets: <= {BYTES_TARGET} bytes per interaction; longest GC pause <= "
        f"{PAUSE_TARGET_MS:.0f} ms with 1M tracked"
    )


if __name__ == "__main__":
    main()
