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

In production the broker and the producers run on machines of their own. Here all three
share the cores, so where there are two or more, the daemon gets the last one to itself
and the producer and a local broker (found by its listening port) share the others; an
unpinned run (``--shared-cores``) measures how they crowd each other instead.

    .venv/bin/python -m bench.latency [--rate RECORDS_PER_S] [--seconds S]
                                      [--state-save-seconds S] [--shared-cores]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from prometheus_client import CollectorRegistry

from bench.broker import broker, local_pids, pin, service_settings
from consumer.commands.run import daemon as wire
from consumer.kafka.admin import ensure_topics
from consumer.kafka.producer import TopicProducer
from consumer.observe import logs
from consumer.settings.schema import KafkaSettings
from consumer.simulator.traffic import Simulator, TrafficSettings, demo_thresholds

SPEED = 20.0
RECORDS_PER_INTERACTION = 6.0  # what the simulator makes on average
PARTITIONS = 4
# The producer's pace: each tick's records leave together (their timestamps are taken
# then, so the figures measure from there). Every 2 ms, the broker answered some 2,000
# produce requests a second at 25k records/s, on the cores the daemon needs.
TICK = 0.01


async def produce(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """Publish ``rate`` records per second for ``seconds``, then what is still scripted.

    Everything is scripted, rendered and given its partition before the clock starts, and
    each tick's records go out in one producer batch per partition: the producer shares the
    two cores with the daemon and the broker, and one ``send`` per record took most of a
    core at 25k records/s, starving the daemon it was meant to measure.
    """
    traffic = TrafficSettings(rate=rate / RECORDS_PER_INTERACTION, speed=SPEED, seed=2)
    # Scripting takes a while and the times it writes into the snapshots must lie ahead,
    # not in the past: time a sample, then start far enough out for the rest.
    # (the sample's interactions scripted to their end, or their records are undercounted)
    timed = time.perf_counter()
    sampler = Simulator(traffic, 0.0)
    sample = sampler.due(1.0) + sampler.due(float("inf"), start_new=False)
    per_record = (time.perf_counter() - timed) / max(1, len(sample))
    start = time.time() + 2.0 + 1.5 * per_record * rate * (seconds + 10.0)
    sim = Simulator(traffic, start)
    scripted = [
        # any fixed key -> partition mapping keeps each interaction on one partition
        (moment, zlib.crc32(record.key or b"") % PARTITIONS, (record.key, record.value))
        for moment, record in sim.due(start + seconds) + sim.due(float("inf"), start_new=False)
    ]
    producer = TopicProducer(KafkaSettings(bootstrap_servers=bootstrap))
    await producer.start()
    acks = []
    try:
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu = time.process_time()
        sent = 0
        while sent < len(scripted):
            now = time.time()
            due: dict[int, list[tuple[bytes | None, bytes | None]]] = {}
            while sent < len(scripted) and scripted[sent][0] <= now:
                _, partition, pair = scripted[sent]
                due.setdefault(partition, []).append(pair)
                sent += 1
            for partition, pairs in due.items():
                acks += await producer.send_many(topic, partition, pairs)
            await asyncio.sleep(TICK)
        await producer.confirm(acks)
        print(f"  producer: {sent:,} records, {time.process_time() - cpu:.1f} s of CPU")
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


@contextmanager
def cores(bootstrap: str) -> Iterator[set[int] | None]:
    """Within the block, this process (the daemon) on the last core, a local broker on the rest.

    Yields the other cores, for the producer, or ``None`` with one core (nothing pinned).
    Everything is let run anywhere again afterwards: ``make bench`` goes on on this broker.
    """
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        yield None
        return
    own, others = {max(allowed)}, allowed - {max(allowed)}
    brokers = local_pids(bootstrap)
    print(
        f"  daemon on core {max(allowed)}; producer and "
        f"{'broker' if brokers else 'no local broker (not found)'} on {sorted(others)}"
    )
    try:
        pin(os.getpid(), own)
        for pid in brokers:
            pin(pid, others)
        yield others
    finally:
        for pid in (os.getpid(), *brokers):
            pin(pid, allowed)


async def measure(
    bootstrap: str,
    rate: float,
    seconds: float,
    kafka: dict[str, Any],
    producer_cores: set[int] | None,
) -> CollectorRegistry:
    """Run the daemon (``kafka``: further settings) against a steady producer; its registry.

    ``producer_cores``: where the producer process runs (``None``: anywhere).
    """
    topic = f"bench-{uuid.uuid4().hex[:8]}.interactions"
    settings = service_settings(
        bootstrap, topic, kafka, stalls={"thresholds": demo_thresholds(SPEED)}
    )
    await ensure_topics(settings.kafka, [topic], PARTITIONS)
    registry = CollectorRegistry()
    daemon = wire(settings, registry)
    task = asyncio.create_task(daemon.run())
    try:
        while len(daemon.step.views) < PARTITIONS or not all(
            v.caught_up and not v.restoring for v in daemon.step.views
        ):
            await asyncio.sleep(0.1)
        producer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.latency", "--produce", bootstrap, topic),
            *("--rate", str(rate), "--seconds", str(seconds)),
            *(["--cores", ",".join(map(str, producer_cores))] if producer_cores else []),
        )
        if await producer.wait() != 0:
            raise RuntimeError("the producer failed")
        # the longest compressed threshold, then a margin: the last stalls come due
        await asyncio.sleep(max(demo_thresholds(SPEED).values()) + 2.0)
    finally:
        daemon.stop()
        await task
    return registry


def run(
    rate: float, seconds: float, save_seconds: float | None = None, pinned: bool = True
) -> dict[str, tuple[float, float, float]]:
    """Measure at ``rate`` records per second, print and return p50/p99/max (ms) of each.

    ``save_seconds`` sets ``kafka.state_save_seconds`` (default: the daemon's default);
    ``pinned``: the daemon on a core of its own (see the module's docstring).
    """
    kafka: dict[str, Any] = {} if save_seconds is None else {"state_save_seconds": save_seconds}
    with broker() as bootstrap:
        print(
            f"latency benchmark on {bootstrap}, {os.cpu_count()} cores: "
            f"{rate:,.0f} records/s for {seconds:.0f}s, settings {kafka or 'default'}"
        )
        result_to = sys.stdout
        try:
            with cores(bootstrap) if pinned else nullcontext() as producer_cores:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the daemon's logs go nowhere
                logs.configure("INFO", "json")
                registry = asyncio.run(measure(bootstrap, rate, seconds, kafka, producer_cores))
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
    parser.add_argument("--state-save-seconds", type=float, help="kafka.state_save_seconds")
    parser.add_argument(
        "--shared-cores", action="store_true", help="daemon, producer and broker unpinned"
    )
    parser.add_argument("--produce", nargs=2, metavar=("BOOTSTRAP", "TOPIC"))
    parser.add_argument("--cores", help="the producer's cores, comma-separated")
    args = parser.parse_args()
    if args.produce:
        if args.cores:
            pin(os.getpid(), {int(core) for core in args.cores.split(",")})
        bootstrap, topic = args.produce
        asyncio.run(produce(bootstrap, topic, args.rate, args.seconds))
    else:
        run(args.rate, args.seconds, args.state_save_seconds, not args.shared_cores)


if __name__ == "__main__":
    main()
