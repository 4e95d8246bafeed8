"""The benchmark topic: realistic dialer snapshots, pre-loaded before anything is timed.

Simulated traffic (every dialing mode and stage, stalls, duplicates, late snapshots,
tombstones, snake_case producers, a few per cent malformed records) whose interaction
ids are folded onto a fixed number of distinct ids, so that a million records speak of
about fifty thousand interactions, each living through several calls as in a real
campaign. Records carry their simulated publication time as their Kafka timestamp, in
the recent past, so the service reads them as the backlog after an outage.
"""

from __future__ import annotations

import asyncio
import re
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.simulator.traffic import Simulated, Simulator, TrafficSettings

RATE = 400.0  # interactions begun per simulated second
# one malformed record per malformed "interaction": 15% of interactions make about 2.5%
# of the records malformed
MALFORMED_SHARE = 0.15
_SIM_ID = re.compile(rb"sim-1-(\d{7})")


def records(count: int, distinct: int, start: float) -> list[tuple[float, Simulated]]:
    """``count`` (publication time, record) pairs about ``distinct`` interaction ids."""
    sim = Simulator(TrafficSettings(rate=RATE, seed=1, malformed_share=MALFORMED_SHARE), start)
    made: list[tuple[float, Simulated]] = []
    moment = start
    while len(made) < count:
        moment += 10.0
        made += sim.due(moment)

    def fold(match: re.Match[bytes]) -> bytes:
        return b"bench-%07d" % (int(match.group(1)) % distinct)

    folded = []
    for at, record in made[:count]:
        key = None if record.key is None else _SIM_ID.sub(fold, record.key)
        value = None if record.value is None else _SIM_ID.sub(fold, record.value)
        folded.append((at, Simulated(key, value, record.kind)))
    return folded


async def load(
    bootstrap: str, topic: str, partitions: int, data: list[tuple[float, Simulated]]
) -> float:
    """Create ``topic`` and produce ``data`` to it, keyed by interaction; returns seconds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1_048_576, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for at, record in data:
            pending.append(
                await producer.send(
                    topic, record.value, key=record.key, timestamp_ms=int(at * 1000)
                )
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started
