"""Restore benchmark: time to take back 100k and 1M active interactions from the changelog.

For each size, one changelog partition is filled with that many saved interactions (as
the daemon writes them), then read back twice in the same run:

* baseline: reading the partition and keeping the latest value per key, nothing more
  (the floor any restore pays to the broker and the client);
* restore: what an instance does on assignment (read, decode, rebuild the tracker).

It prints seconds, interactions per second and restore / baseline. Uses the broker in
``KAFKA_BOOTSTRAP_SERVERS``, or starts one with ``scripts/kafka-local``.

    .venv/bin/python -m bench.restore [SIZE ...]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from bench.broker import broker
from consumer.daemon.metrics import ConsumerMetrics
from consumer.daemon.restore import restore
from consumer.engine.lifecycle import merge, new_interaction
from consumer.engine.limits import Limits
from consumer.engine.observations import Observations
from consumer.engine.snapshot import Snapshot
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.formats import changelog
from consumer.kafka.readers import ChangelogReader
from consumer.settings.schema import KafkaSettings

T0 = 1_795_600_000.0


def saved_value(n: int) -> bytes:
    """The changelog value of a realistic interaction in the previewing stage."""
    state = new_interaction()
    merge(
        state,
        Snapshot(
            interaction_id=f"bench-{n}",
            campaign_id=f"campaign-{n % 20}",
            campaign_name="Renewals",
            agent_id=f"agent-{n % 300}",
            queue_id="queue-1",
            dialing_mode="preview",
            active=True,
            times=(T0 + n % 1000, T0 + n % 1000 + 1, None, None, None, None),
        ),
    )
    state.seen = T0 + n % 1000 + 1
    return changelog.encode(state, None)


async def fill(bootstrap: str, topic: str, size: int) -> float:
    """Create a one-partition compacted topic holding ``size`` saved interactions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1_048_576, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    template = saved_value(0)
    pending = []
    for n in range(size):
        value = template if n % 1000 else saved_value(n)  # vary a little, cheaply
        pending.append(
            await producer.send(topic, value, key=f"bench-{n:08d}".encode(), partition=0)
        )
        if len(pending) >= 50_000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await producer.stop()
    return time.perf_counter() - started


async def measure(bootstrap: str, size: int) -> None:
    """Fill, then time the baseline read and the restore of one partition."""
    topic = f"bench-state-{uuid.uuid4().hex[:8]}"
    filled = await fill(bootstrap, topic, size)
    settings = KafkaSettings(bootstrap_servers=bootstrap, state_topic=topic)

    reader = ChangelogReader(settings, topic)
    started = time.perf_counter()
    latest = await reader.read(0, lambda n: None)
    baseline = time.perf_counter() - started
    assert len(latest) == size
    del latest

    metrics = ConsumerMetrics(CollectorRegistry(), lambda: [])
    tracker = Tracker(StallPolicy(), Limits(max_interactions=size + 1), Observations())
    started = time.perf_counter()
    restored = await restore(reader, (topic, 0), tracker, metrics)
    took = time.perf_counter() - started
    assert restored == len(tracker) == size
    print(
        f"{size:>9,} interactions | fill {filled:6.1f}s | baseline read {baseline:6.2f}s "
        f"({size / baseline:>9,.0f}/s) | restore {took:6.2f}s ({size / took:>9,.0f}/s) "
        f"| restore / baseline {took / baseline:4.2f}"
    )


def main() -> None:
    """Run the sizes given (default 100k and 1M) against a broker."""
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    with broker() as bootstrap:
        print(f"restore benchmark on {bootstrap}, {os.cpu_count()} cores")
        for size in sizes:
            asyncio.run(measure(bootstrap, size))


if __name__ == "__main__":
    main()
