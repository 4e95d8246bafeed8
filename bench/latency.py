"""Latency at a steady load: record to state, and stall threshold to acknowledged alert.

A producer process publishes simulated traffic (calls 20x faster than life, so stalls
happen within the run; thresholds compressed alike) at a steady rate, paced on the wall
clock, while the daemon (the real :class:`consumer.runner.Daemon`, default settings)
consumes it. The daemon is instrumented from outside, by subclassing:

* record to state: wall time when a record's batch has been applied to the trackers,
  minus the record's timestamp (set by the producer when it sent the record);
* threshold to alert: wall time when a firing alert was acknowledged by the broker (the
  alerts topic, and the state changelog saying it fired), minus the moment its stall
  came due (the stall's start, from the snapshots' own times, plus its threshold).

Prints p50, p99 and max of each. ``--rate`` is records per second; ``python -m bench``
passes half the service throughput it measured.

    .venv/bin/python -m bench.latency [--rate RECORDS_PER_S] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench.broker import broker
from consumer import config, logs
from consumer.kafka import Partition, Record, ensure_topics
from consumer.runner import Daemon, _Outputs, _Partition
from consumer.simulate import Simulator, TrafficSettings, demo_thresholds

SPEED = 20.0
RECORDS_PER_INTERACTION = 6.0  # what the simulator makes on average


class TimedDaemon(Daemon):
    """The daemon, noting when records are applied and alerts acknowledged."""

    def __init__(self, settings: config.Settings) -> None:
        super().__init__(settings, CollectorRegistry())
        self.to_state: list[float] = []
        self.to_alert: list[float] = []

    def _apply(self, part: _Partition, records: list[Record], outputs: _Outputs) -> None:
        super()._apply(part, records, outputs)
        now = time.time()
        self.to_state += [now - r.timestamp / 1000 for r in records]

    async def _deliver(self, outputs: _Outputs) -> None:
        await super()._deliver(outputs)
        now = time.time()
        for alert in outputs.alerts:
            if alert.status == "firing":
                since = datetime.fromisoformat(alert.stalled_since).timestamp()
                self.to_alert.append(now - (since + alert.threshold_seconds))


async def produce(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """Publish ``rate`` records per second for ``seconds``, then what is still scripted."""
    start = time.time() + 1.0
    traffic = TrafficSettings(rate=rate / RECORDS_PER_INTERACTION, speed=SPEED, seed=2)
    sim = Simulator(traffic, start)
    scripted = sim.due(start + seconds) + sim.due(float("inf"), start_new=False)
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


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{len(values)} samples"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1000:7.1f} ms  p99 {cuts[98] * 1000:7.1f} ms  "
        f"max {max(values) * 1000:7.1f} ms  ({len(values):,} samples)"
    )


async def measure(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """Run the daemon against a steady producer; return the latency samples."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{group}.interactions"
    settings = config.load_settings(
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topic": topic,
                "group_id": group,
                "alerts_topic": f"{group}.alerts",
                "dead_letter_topic": f"{group}.dead-letter",
            },
            "stalls": {"thresholds": demo_thresholds(SPEED)},
        }
    )
    await ensure_topics(settings.kafka, [topic], 4)
    daemon = TimedDaemon(settings)
    task = asyncio.create_task(daemon.run())
    try:
        while len(daemon.partitions) < 4 or not all(_ready(daemon, tp) for tp in daemon.partitions):
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
    return {"to_state": daemon.to_state, "to_alert": daemon.to_alert}


def _ready(daemon: Daemon, tp: Partition) -> bool:
    part = daemon.partitions[tp]
    return part.restoring is None and part.clock.caught_up


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
        return
    with broker() as bootstrap:
        print(
            f"latency benchmark on {bootstrap}, {os.cpu_count()} cores: "
            f"{args.rate:,.0f} records/s for {args.seconds:.0f}s"
        )
        result_to = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the daemon's logs go nowhere
        logs.configure("INFO", "json")
        samples = asyncio.run(measure(bootstrap, args.rate, args.seconds))
        sys.stdout = result_to
        print(f"  record to state:    {_percentiles(samples['to_state'])}")
        print(f"  threshold to alert: {_percentiles(samples['to_alert'])}")


if __name__ == "__main__":
    main()
