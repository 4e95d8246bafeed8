"""End-to-end throughput: the service against the client's ceiling, a naive consumer, a peer.

One topic on the broker is pre-loaded with realistic snapshots (:mod:`bench.dataset`:
1M records about 50k interactions by default), then each contender drains it from the
start in a fresh process and a fresh consumer group, timed from its first record to its
last:

* ceiling: a bare aiokafka ``getmany`` loop that reads and discards;
* service: the daemon itself (:class:`consumer.daemon.loop.Daemon` with default settings:
  decode, track, stall timers, metrics, dead letters, alerts, state changelog, commits),
  done when its committed offsets reach the end of every partition;
* naive: per-message ``async for`` over aiokafka feeding :mod:`bench.naive`;
* quix: the same tracking written with Quix Streams (:mod:`bench.peer_quix`), when
  ``quixstreams`` is installed (``pip install -e '.[bench]'``).

Prints events per second for each and the ratios service / ceiling, service / naive,
service / quix. Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, or a local one.

    .venv/bin/python -m bench.throughput [--records N] [--interactions K] [--partitions P]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from bench import dataset
from bench.broker import broker, service_settings
from bench.naive import NaiveTracker
from bench.progress import Progress
from consumer.commands.run import daemon as wire
from consumer.observe import logs

CONTENDERS = ("ceiling", "service", "naive", "quix")


def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=1_048_576 + 1024,  # as the service's consumer
    )


async def ceiling(bootstrap: str, topic: str, progress: Progress) -> None:
    """Read and discard, in batches, as fast as the client goes."""
    consumer = _consumer(bootstrap, topic)
    await consumer.start()
    try:
        done = False
        while not done:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            done = progress.add(sum(len(records) for records in batch.values()))
    finally:
        await consumer.stop()


async def naive(bootstrap: str, topic: str, progress: Progress) -> None:
    """Message by message into the naive tracker."""
    tracker = NaiveTracker()
    consumer = _consumer(bootstrap, topic)
    await consumer.start()
    try:
        async for message in consumer:
            tracker.handle(message.key, message.value)
            if progress.add(1):
                break
    finally:
        await consumer.stop()


async def service(bootstrap: str, topic: str, progress: Progress) -> None:
    """The daemon with default settings, until everything is applied and committed."""
    settings = service_settings(bootstrap, topic)
    logs.configure(settings.log.level, settings.log.format)  # logging is part of the cost
    daemon = wire(settings, CollectorRegistry())
    task = asyncio.create_task(daemon.run())
    try:
        while not task.done():
            committed = sum(daemon.ledger.committed_offsets.values())
            applied = sum(p.next_offset or 0 for p in daemon.step.partitions.values())
            progress.add(applied - progress.records)
            if committed >= progress.expected:
                break
            await asyncio.sleep(0.01)
    finally:
        daemon.stop()
        await task


def run_contender(name: str, bootstrap: str, topic: str, records: int) -> dict[str, Any]:
    """Run one contender in a process of its own; returns its result line."""
    module = "bench.peer_quix" if name == "quix" else "bench.throughput"
    command = [sys.executable, "-m", module, "--bootstrap", bootstrap, "--topic", topic]
    command += ["--records", str(records)]
    if name != "quix":
        command += ["--contender", name]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(records: int, interactions: int, partitions: int) -> dict[str, int]:
    """Load the topic once, run every contender on it; print and return records/s of each."""
    names = [n for n in CONTENDERS if n != "quix" or importlib.util.find_spec("quixstreams")]
    with broker() as bootstrap:
        print(f"throughput benchmark on {bootstrap}, {os.cpu_count()} cores")
        started = time.perf_counter()
        data = dataset.records(records, interactions, time.time() - 3600)
        made = time.perf_counter() - started
        distinct = len({r.key for _, r in data})
        invalid = sum(r.kind == "malformed" for _, r in data)
        topic = f"bench-interactions-{uuid.uuid4().hex[:8]}"
        loaded = asyncio.run(dataset.load(bootstrap, topic, partitions, data))
        del data
        print(
            f"  {records:,} records ({invalid:,} malformed) about {distinct:,} keys on "
            f"{partitions} partitions: generated in {made:.0f}s, loaded in {loaded:.0f}s"
        )
        results = {}
        for name in names:
            result = run_contender(name, bootstrap, topic, records)
            results[name] = result["per_second"]
            print(
                f"  {name:>8}: {result['per_second']:>9,} records/s "
                f"({result['records']:,} in {result['seconds']:.2f}s)"
            )
        if "quix" not in results:
            print("  quix: not run (pip install -e '.[bench]' installs quixstreams)")
        for other in ("ceiling", "naive", "quix"):
            if other in results:
                print(f"  service / {other}: {results['service'] / results[other]:.2f}")
    return results


def main() -> None:
    """Compare all contenders, or (with ``--contender``) run one and print its result."""
    parser = argparse.ArgumentParser(prog="bench.throughput")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--contender", choices=[n for n in CONTENDERS if n != "quix"])
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic")
    args = parser.parse_args()
    if args.contender is None:
        compare(args.records, args.interactions, args.partitions)
        return
    progress = Progress(args.records)
    contender = {"ceiling": ceiling, "service": service, "naive": naive}[args.contender]
    result_to = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the service's logs go nowhere
    asyncio.run(contender(args.bootstrap, args.topic, progress))
    print(json.dumps(progress.report(args.contender)), file=result_to)


if __name__ == "__main__":
    main()
