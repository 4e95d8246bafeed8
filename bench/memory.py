"""Memory benchmark: bytes of tracker state per interaction, and garbage-collection pauses.

For each size, a fresh process (so resident set figures do not bleed between sizes):

1. imports everything, builds an empty :class:`~consumer.engine.tracker.Tracker`, collects
   garbage and reads its resident set size (``VmRSS`` of ``/proc/self/status``): idle;
2. applies SIZE distinct, realistic snapshots (``Tracker.apply``), built one at a time:
   ids like ``sim-7-0001234`` (13 to 17 characters), 20 campaigns with names, 300 agents,
   12 queues, 70% preview (``activePreviewCall`` true, a stall timer running) and the
   rest power, progressive or predictive (``activePreviewCall`` false, as the dialer
   writes it: not watched, no timer), all mid-lifecycle (created, previewing, placed or
   routed), so none ends. The tracker clock advances 10 s over the load and ticks every
   batch, as the daemon does: 1% of the previews were popped 400 to 920 s ago, so their
   stall fires and its alert is held in ``Tracker.stalled``; no other stall comes due and
   nothing idles past the TTL. Then it collects garbage and reads the RSS again: loaded.
   (RSS - idle) / SIZE is the cost of one tracked interaction, all overheads included;
3. with them loaded, runs 200k more records through the daemon's path, in batches of
   500: each moves a random tracked interaction one stage on (or re-sends it once it is
   connected), rendered as the dialer's JSON, decoded by ``consumer.engine.model.decode_record``
   and applied, so the garbage is the daemon's own. Every automatic collection is timed
   (``gc.callbacks``, start to stop), per generation; then one forced full collection.
   The collector is tuned first as the daemon tunes it (``consumer.commands.run``).

It prints, per size: idle and loaded RSS, bytes per interaction, the longest automatic
pause during the updates (and its generation) and the forced full collection; then the
automatic collections per generation while loading and while updating, and the targets:
at most 300 bytes per tracked interaction, and no garbage-collection pause above 20 ms
with 1M tracked, judged on every automatic pause and on the full collection (which is
what each automatic generation-2 run costs, however rarely it comes). No broker.

    .venv/bin/python -m bench.memory [SIZE ...]      (default: 100000 1000000)
"""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import time
from typing import Any, Final, NamedTuple

import msgspec

from consumer.commands.run import collect_for_a_consumer
from consumer.engine.interaction import Interaction
from consumer.engine.limits import Limits
from consumer.engine.model import WIRE_TIMES, Invalid, decode_record, iso
from consumer.engine.observations import Observations
from consumer.engine.snapshot import Snapshot
from consumer.engine.stages import STAGES, Stage
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker

T0: Final = 1_795_600_000.0
LOAD_SECONDS: Final = 10.0  # tracker clock advance over the whole load
UPDATE_SECONDS: Final = 20.0  # and over the update workload: no new stall comes due
UPDATES: Final = 200_000
BATCH: Final = 500  # records per batch; the tracker ticks after each, as the daemon does
BYTES_TARGET: Final = 300
PAUSE_TARGET_MS: Final = 20.0
PAUSE_TARGET_SIZE: Final = 1_000_000

TOPICS: Final = ("Renewals", "Win-back", "Collections", "Surveys", "Appointments")
REGIONS: Final = ("North", "South", "East", "West")
OTHER_MODES: Final = ("power", "progressive", "predictive")
_MASK: Final = (1 << 64) - 1


class Profile(NamedTuple):
    """What interaction ``n`` is, derived from ``n`` alone (no list of them is kept)."""

    iid: str
    campaign: int
    agent: int
    queue: int
    mode: str
    stage: Stage
    stuck: bool
    recent: float  # seconds between its last move and the moment it is loaded
    think: float  # agent think time, preview popped to call placed

    @property
    def preview(self) -> bool:
        """A preview interaction: ``activePreviewCall`` true, watched for stalls."""
        return self.mode == "preview"


class Result(msgspec.Struct):
    """The figures of one size, as the measuring process hands them to the table."""

    size: int
    idle_rss: int
    loaded_rss: int
    updated_rss: int  # after the updates and a full collection
    timers: int  # stall timer entries after the load
    timers_updated: int  # and after the updates, stale entries included
    stalled: int  # fired stall alerts held after the load
    gc_tracked: int  # objects the collector tracks after the load
    # automatic collections per generation, while loading and during the updates
    load_runs: list[int]
    load_longest_ms: list[float]
    runs: list[int]
    longest_ms: list[float]
    forced_full_ms: float

    @property
    def bytes_per_interaction(self) -> float:
        """Resident set growth per tracked interaction."""
        return (self.loaded_rss - self.idle_rss) / self.size

    @property
    def longest(self) -> tuple[float, int]:
        """The longest automatic pause during the updates, and its generation."""
        return max((ms, gen) for gen, ms in enumerate(self.longest_ms))

    @property
    def load_longest(self) -> tuple[float, int]:
        """The longest automatic pause while loading, and its generation."""
        return max((ms, gen) for gen, ms in enumerate(self.load_longest_ms))


def rss() -> int:
    """Resident set size of the running process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _mix(n: int) -> int:
    """A well-mixed 64-bit number for ``n`` (splitmix64): cheap, repeatable randomness."""
    z = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def profile(n: int) -> Profile:
    """Interaction ``n``: 70% preview, 1% of those stuck, the rest mid-lifecycle."""
    h, h2 = _mix(n), _mix(n ^ 0x5DEECE66D)
    preview = h % 100 < 70
    mode = "preview" if preview else OTHER_MODES[(h >> 8) % 3]
    stuck = preview and (h >> 16) % 100 == 0
    pick = (h >> 24) % 100
    if stuck:
        stage = Stage.PREVIEWING
    elif preview:
        stage = (
            Stage.CREATED
            if pick < 5
            else Stage.PREVIEWING
            if pick < 60
            else Stage.PLACED
            if pick < 82
            else Stage.ROUTED
        )
    else:
        stage = Stage.CREATED if pick < 10 else Stage.PLACED if pick < 60 else Stage.ROUTED
    suffix = f"-{(h2 >> 50) % 100:02d}" if (h2 >> 60) % 4 == 0 else ""  # a redial
    return Profile(
        iid=f"sim-{1 + (h >> 32) % 12}-{n:07d}{suffix}",
        campaign=(h >> 40) % 20,
        agent=(h >> 48) % 300,
        queue=(h2 >> 40) % 12,
        mode=mode,
        stage=stage,
        stuck=stuck,
        recent=(h2 % 20_000) / 1000 + (400.0 + (h2 >> 20) % 500 if stuck else 0.0),
        think=3 + (h2 >> 30) % 57_000 / 1000,
    )


def loaded_snapshot(n: int, now: float) -> Snapshot:
    """Interaction ``n`` as first seen at ``now``: its stage entered ``recent`` s before."""
    p = profile(n)
    times: list[float | None] = [None] * len(STAGES)
    last = times[p.stage] = now - p.recent
    if p.stage is Stage.ROUTED:
        last = times[Stage.PLACED] = last - 2.5
    if p.stage >= Stage.PLACED and p.preview:
        last = times[Stage.PREVIEWING] = last - p.think
    if p.stage is not Stage.CREATED:
        times[Stage.CREATED] = last - 1.2
    # fresh strings, as decoding makes them: the tracker keeps one copy of each
    return Snapshot(
        interaction_id=p.iid,
        campaign_id=f"campaign-{p.campaign:02d}",
        campaign_name=f"{TOPICS[p.campaign % 5]} {REGIONS[p.campaign // 5]}",
        agent_id=f"agent-{p.agent:03d}",
        queue_id=f"queue-{p.queue:02d}",
        dialing_mode=p.mode,
        active=p.preview,
        times=tuple(times),
    )


def moved_record(n: int, state: Interaction, now: float) -> tuple[bytes, bytes]:
    """The dialer's next JSON snapshot of tracked interaction ``n``: one stage further."""
    p = profile(n)
    times = list(state.times)
    stage = state.stage
    if stage is Stage.CREATED:
        times[Stage.PREVIEWING if p.preview else Stage.PLACED] = now - 0.5
    elif stage < Stage.CONNECTED:
        times[stage + 1] = now - 0.5
    body: dict[str, Any] = {
        "id": p.iid,
        "campaign": {
            "id": f"campaign-{p.campaign:02d}",
            "name": f"{TOPICS[p.campaign % 5]} {REGIONS[p.campaign // 5]}",
        },
        "agent": {"id": f"agent-{p.agent:03d}", "name": f"Agent {p.agent:03d}"},
        "contact": {"id": f"contact-{n:07d}", "name": "Pat Example"},
        "queue": {"id": f"queue-{p.queue:02d}"},
        "destinationAddress": f"+1555{n % 10**7:07d}",
        "dialingMode": p.mode.upper(),
        "activePreviewCall": p.preview,
        "skills": [{"id": "skill-english"}],
    }
    for s, moment in zip(STAGES, times, strict=True):
        if moment is not None:
            body[WIRE_TIMES[s.label]] = iso(moment)
    placed = times[Stage.PLACED]
    if times[Stage.CONNECTED] is not None and placed is not None:
        body["conversation"] = {
            "id": f"conv-{p.iid}",
            "startTime": iso(placed),
            "endTime": None,
            "participants": [{"id": "p-dialer", "purpose": "dialer.system"}],
        }
    return p.iid.encode(), msgspec.json.encode(body)


def end_batch(tracker: Tracker, now: float) -> None:
    """What the daemon does after each batch: tick, take the dirty ids, drain the counts."""
    tracker.tick(now)
    tracker.take_dirty()
    tracker.obs.drain()


def per_generation(pauses: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    """Runs and longest pause in milliseconds, per generation, of (generation, seconds)."""
    runs, longest = [0, 0, 0], [0.0, 0.0, 0.0]
    for gen, seconds in pauses:
        runs[gen] += 1
        longest[gen] = max(longest[gen], seconds * 1000)
    return runs, longest


def measure(size: int) -> Result:
    """Load ``size`` interactions, measure the RSS, then time collections while updating."""
    collect_for_a_consumer()  # the collector as the daemon sets it when wired
    tracker = Tracker(StallPolicy(), Limits(max_interactions=size + 1), Observations())
    gc.collect()
    idle = rss()

    pauses: list[tuple[int, float]] = []  # (generation, seconds) of the current phase
    began = 0.0

    def timed(event: str, info: dict[str, int]) -> None:
        nonlocal began
        if event == "start":
            began = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - began))

    gc.callbacks.append(timed)
    now = T0
    for n in range(size):
        now = T0 + LOAD_SECONDS * n / size
        tracker.ingest(loaded_snapshot(n, now), now)
        if n % BATCH == BATCH - 1:
            end_batch(tracker, now)
    end_batch(tracker, now)
    gc.callbacks.remove(timed)
    load_runs, load_longest = per_generation(pauses)
    pauses.clear()
    gc.collect()
    loaded = rss()
    gc_tracked = len(gc.get_objects())
    timers, stalled = tracker.timers, len(tracker.stalled)
    assert len(tracker) == size, "every interaction must still be tracked"

    gc.callbacks.append(timed)
    load_end, rng = now, random.Random(7)
    states = tracker.states
    for first in range(0, UPDATES, BATCH):
        now = load_end + UPDATE_SECONDS * first / UPDATES
        batch = []
        for _ in range(BATCH):
            n = rng.randrange(size)
            batch.append(moved_record(n, states[profile(n).iid], now))
        for key, value in batch:
            item = decode_record(key, value)
            assert not isinstance(item, Invalid), item
            tracker.ingest(item, now)
        end_batch(tracker, now)
    gc.callbacks.remove(timed)
    runs, longest = per_generation(pauses)
    started = time.perf_counter()
    gc.collect()
    forced = time.perf_counter() - started
    assert len(tracker) == size, "every interaction must still be tracked"
    return Result(
        size=size,
        idle_rss=idle,
        loaded_rss=loaded,
        updated_rss=rss(),
        timers=timers,
        timers_updated=tracker.timers,
        stalled=stalled,
        gc_tracked=gc_tracked,
        load_runs=load_runs,
        load_longest_ms=load_longest,
        runs=runs,
        longest_ms=longest,
        forced_full_ms=forced * 1000,
    )


def _verdict(ratio: float) -> str:
    return f"{ratio:.2f}x target, {'target met' if ratio <= 1 else 'missed'}"


def _generations(runs: list[int], longest_ms: list[float]) -> str:
    return ", ".join(f"gen {g} {runs[g]:,} runs {longest_ms[g]:.1f} ms" for g in range(3))


def report(results: list[Result]) -> None:
    """Print the table, the collection details and the targets."""
    mb = 2**20
    print("memory benchmark: tracker state, one fresh process per size")
    print(
        "     tracked | idle RSS | loaded RSS | bytes/interaction | longest automatic GC pause"
        f" ({UPDATES // 1000}k updates) | forced full GC"
    )
    for r in results:
        ms, gen = r.longest
        longest = f"{ms:.1f} ms (gen {gen})" if any(r.runs) else "none ran"
        print(
            f"  {r.size:>10,} | {r.idle_rss / mb:5.0f} MB | {r.loaded_rss / mb:7.0f} MB | "
            f"{r.bytes_per_interaction:>17,.0f} | {longest:>40} | "
            f"{r.forced_full_ms:>9.1f} ms"
        )
    print("details: automatic collections (runs, longest pause), timers, RSS after the updates")
    for r in results:
        print(
            f"  {r.size:>10,}: loading {_generations(r.load_runs, r.load_longest_ms)}; "
            f"updates {_generations(r.runs, r.longest_ms)}"
        )
        print(
            f"  {'':>10}  after the load {r.timers:,} stall timers, {r.stalled:,} fired stalls "
            f"held, {r.gc_tracked:,} objects tracked by the collector; after the updates "
            f"{r.timers_updated:,} timers (stale ones included), RSS {r.updated_rss / mb:.0f} MB"
        )
    print("targets")
    print(f"  <= {BYTES_TARGET} bytes per tracked interaction")
    for r in results:
        ratio = r.bytes_per_interaction / BYTES_TARGET
        print(f"  {r.size:>10,}: {r.bytes_per_interaction:,.0f} bytes, {_verdict(ratio)}")
    print(
        f"  longest GC pause <= {PAUSE_TARGET_MS:.0f} ms with {PAUSE_TARGET_SIZE:,} tracked "
        "(a full collection is what each automatic gen 2 run costs)"
    )
    for r in results:
        ms, gen = max(r.longest, r.load_longest)
        when = "during the updates" if (ms, gen) == r.longest else "while loading"
        automatic = f"automatic {ms:.1f} ms (gen {gen}, {when}), {_verdict(ms / PAUSE_TARGET_MS)}"
        if not any(r.runs) and not any(r.load_runs):
            automatic = "no automatic collection ran"
        note = "" if r.size >= PAUSE_TARGET_SIZE else " (for reference: the target is at 1M)"
        print(
            f"  {r.size:>10,}: {automatic}; full collection {r.forced_full_ms:.1f} ms, "
            f"{_verdict(r.forced_full_ms / PAUSE_TARGET_MS)}{note}"
        )


def main() -> None:
    """Measure each size in a process of its own, then print the table."""
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        sys.stdout.buffer.write(msgspec.json.encode(measure(int(sys.argv[2]))) + b"\n")
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    results = []
    for size in sizes:
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--one", str(size)],
            stdout=subprocess.PIPE,
            check=True,
        )
        results.append(msgspec.json.decode(done.stdout.splitlines()[-1], type=Result))
    report(results)


if __name__ == "__main__":
    main()
