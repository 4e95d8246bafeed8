"""Engine benchmark: decode and track simulated traffic in process, against a naive baseline.

No broker: this isolates the per-record cost of the engine (what ``bench.throughput`` adds
the Kafka client to). Both contenders get the same
records, in the same run:

* naive: what a user might write first (:mod:`bench.naive`);
* engine: ``consumer.engine.model.decode_record`` and ``Tracker.ingest``, with every rule
  (merge, endings, stall timers, observations).

Prints records per second for each, microseconds per record, and engine / naive.

    .venv/bin/python -m bench.engine [RECORDS]
"""

from __future__ import annotations

import sys
import time

from bench.naive import NaiveTracker
from consumer.engine import compiled
from consumer.engine.limits import Limits
from consumer.engine.model import Invalid, decode_record
from consumer.engine.observations import Observations
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.simulator.traffic import Simulated, Simulator, TrafficSettings

START = 1_800_000_000.0


def naive(records: list[tuple[float, Simulated]]) -> int:
    """The naive baseline of :mod:`bench.naive`; returns states kept."""
    tracker = NaiveTracker()
    for _, record in records:
        tracker.handle(record.key, record.value)
    return len(tracker.states)


def engine(records: list[tuple[float, Simulated]]) -> int:
    """The real decode and tracker; returns interactions tracked."""
    tracker = Tracker(StallPolicy(), Limits(), Observations())
    for moment, record in records:
        item = decode_record(record.key, record.value)
        if isinstance(item, Invalid):
            tracker.tick(moment)
        else:
            tracker.ingest(item, moment)  # time passes first: it ticks to ``moment`` itself
    return len(tracker)


def compare(count: int) -> dict[str, float]:
    """Time both contenders on the same simulated records; records per second of each."""
    rate = 2000.0  # interactions begun per second; each makes about five records
    sim = Simulator(TrafficSettings(rate=rate, seed=1), START)
    begun = START + count / (rate * 4)
    records = (sim.due(begun) + sim.due(float("inf"), start_new=False))[:count]
    build = "compiled by mypyc" if compiled() else "uncompiled source"
    print(f"engine benchmark: {len(records):,} simulated records, engine {build}")
    results = dict.fromkeys(("naive", "engine"), 0.0)
    for _ in range(3):  # alternate and keep each one's best: the machine is shared
        for name, contender in (("naive", naive), ("engine", engine)):
            started = time.perf_counter()
            contender(records)
            seconds = time.perf_counter() - started
            results[name] = max(results[name], len(records) / seconds)
    for name, rate in results.items():
        print(f"  {name:>6}: {rate:>9,.0f} records/s  {1e6 / rate:5.2f} us/record (best of 3)")
    print(f"  engine / naive: {results['engine'] / results['naive']:.2f}")
    return results


def main() -> None:
    """Print both contenders' figures."""
    compare(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)


if __name__ == "__main__":
    main()
