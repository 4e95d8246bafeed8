"""Latency at a steady load: record to state, and stall threshold to acknowledged alert.

A producer process publishes simulated traffic (calls 20x faster than life, so stalls
happen within the run; thresholds compressed alike) at a steady rate, paced on the wall
clock, while the daemon (the real :class:`consumer.daemon.loop.Daemon`, default settings)
consumes it. The daemon is instrumented from outside, by subclassing:

* record to state: wall time when a record has been applied to its tracker, minus the
  record's timestamp (set by the producer when it sent the record);
* threshold to alert: wall time when a firing alert was acknowledged by the broker (the
  alerts topic; the state saying it fired follows within ``kafka.state_save_seconds``),
  minus the moment its stall came due (the stall's start, from the snapshots' own
  times, plus its threshold).

Prints p50, p99 and max of each. ``--rate`` is records per second; ``python -m bench``
passes half the service throughput it measured.

    .venv/bin/python -m bench.latency [--rate RECORDS_PER_S] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench.broker import broker, service_settings
from consumer.adapters import logs
from consumer.adapters.kafka import ensure_topics
from consumer.service import daemon as wire
from consumer.simulate import Simulator, TrafficSettings, demo_thresholds

SPEED = 20.0
RECORDS_PER_INTERACTION = 6.0  # what the simulator makes on average


async def produce(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """Publish ``rate`` records per second for ``seconds``, then what is still scripted."""
    traffic = TrafficSettings(rate=rate / RECORDS_PER_INTERACTION, speed=SPEED, seed=2)
    # Scripting takes a while and the times it writes into the snapshots must lie ahead,
    # not in the past: time a sample, then start far enough out for the rest.
    timed = time.perf_counter()
    sample = Simulator(traffic, 0.0).due(1.0)
    per_record = (time.perf_counter() - timed) / max(1, len(sample))
    start = time.time() + 2.0 + 1.5 * per_record * rate * (seconds + 10.0)
    sim = Simulator(traffic, start)
    scripted = sim.due(start + seconds) + sim.due(float("inf"), start_new=False)
    await asyncio.sleep(max(0.0, start - time.time()))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    await producer.start()
    try:
        sent = 0
        while sent < len(scripted):
            now = time.time()
            while sent < len(scripted) and scripted[sent][0] <= now:
                record = scripted[sent][1]
                await producer.send(topic, record.value, key=record.key)
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()


Figures = tuple[float, float, float, int]  # p50, p99, max bound (ms), samples


def percentiles(registry: CollectorRegistry, name: str) -> Figures:
    """p50, p99 and the bound of the highest non-empty bucket of a histogram, in ms."""
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for family in registry.collect()
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    )
    total = buckets[-1][1] if buckets else 0.0

    def quantile(q: float) -> float:
        low, below = 0.0, 0.0
        for bound, count in buckets:
            if count >= q * total:
                if bound == float("inf"):
                    return low
                share = (q * total - below) / (count - below) if count > below else 1.0
                return low + (bound - low) * share
            low, below = bound, count
        return low

    top = next(bound for bound, count in buckets if count >= total) if buckets else 0.0
    return quantile(0.5) * 1000, quantile(0.99) * 1000, top * 1000, int(total)


async def measure(bootstrap: str, rate: float, seconds: float) -> CollectorRegistry:
    """Run the daemon against a steady producer; return its registry."""
    topic = f"bench-{uuid.uuid4().hex[:8]}.interactions"
    settings = service_settings(bootstrap, topic, stalls={"thresholds": demo_thresholds(SPEED)})
    await ensure_topics(settings.kafka, [topic], 4)
    registry = CollectorRegistry()
    daemon = wire(settings, registry)
    task = asyncio.create_task(daemon.run())
    try:
        while len(daemon.step.views) < 4 or not all(
            v.caught_up and not v.restoring for v in daemon.step.views
        ):
            await asyncio.sleep(0.1)
        producer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.latency", "--produce", bootstrap, topic),
            *("--rate", str(rate), "--seconds", str(seconds)),
        )
        if await producer.wait() != 0:
            raise RuntimeError("the producer failed")
        # the longest compressed threshold, then a margin: the last stalls come due
        await asyncio.sleep(max(demo_thresholds(SPEED).values()) + 2.0)
    finally:
        daemon.stop()
        await task
    return registry


def run(rate: float, seconds: float) -> dict[str, tuple[float, float, float]]:
    """Measure at ``rate`` records per second, print and return p50/p99/max (ms) of each."""
    with broker() as bootstrap:
        print(
            f"latency benchmark on {bootstrap}, {os.cpu_count()} cores: "
            f"{rate:,.0f} records/s for {seconds:.0f}s"
        )
        result_to = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the daemon's logs go nowhere
        try:
            logs.configure("INFO", "json")
            registry = asyncio.run(measure(bootstrap, rate, seconds))
        finally:
            sys.stdout = result_to
    figures = {}
    histograms = (
        ("to_state", "dialer_record_delay_seconds", "record to state"),
        ("to_alert", "dialer_stall_alert_delay_seconds", "threshold to alert"),
    )
    for key, metric, label in histograms:
        p50, p99, top, samples = percentiles(registry, metric)
        if samples < 2:
            raise RuntimeError(f"{label}: only {samples} samples")
        figures[key] = p50, p99, top
        print(
            f"  {label:>18}: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  all <= {top:7.1f} ms "
            f"({samples:,} samples)"
        )
    return figures


def main() -> None:
    """Measure at the given rate, or (with ``--produce``) be the producer process."""
    parser = argparse.ArgumentParser(prog="bench.latency")
    parser.add_argument("--rate", type=float, default=15_000.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--produce", nargs=2, metavar=("BOOTSTRAP", "TOPIC"))
    args = parser.parse_args()
    if args.produce:
        bootstrap, topic = args.produce
        asyncio.run(produce(bootstrap, topic, args.rate, args.seconds))
    else:
        run(args.rate, args.seconds)


if __name__ == "__main__":
    main()
