"""Publishing simulated traffic to a topic in real time (``interaction-consumer simulate``).

The simulator is pure; this paces it on the wall clock and produces what is due every
tenth of a second through the same producer the daemon uses, until the time is up or a
signal arrives. Then it drains what is already scripted, so calls in flight finish.

About once a second it sends a heartbeat to every partition (source ``simulator``),
vouching for the moment up to which everything due has been published and
acknowledged, so that the daemon can tell a quiet dialer from a stopped simulator. Every
record it publishes names that source (:data:`~consumer.formats.heartbeat.SOURCE_HEADER`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Final

from consumer.formats import heartbeat
from consumer.kafka.admin import ensure_topics
from consumer.kafka.heartbeats import send_heartbeats
from consumer.kafka.producer import TopicProducer
from consumer.observe.logs import fields
from consumer.settings.schema import KafkaSettings
from consumer.simulator.traffic import Simulator, TrafficSettings

log = logging.getLogger(__name__)

SOURCE: Final = "simulator"
HEARTBEAT_SECONDS: Final = 1.0


async def publish(
    settings: KafkaSettings,
    topic: str,
    traffic: TrafficSettings,
    seconds: float | None,
    stop: asyncio.Event,
) -> None:
    """Produce simulated traffic to ``topic`` for ``seconds`` (or until ``stop`` is set)."""
    if settings.create_topics:
        await ensure_topics(settings, [topic], 3)
    producer = TopicProducer(settings)
    await producer.start()
    started = time.time()
    sim = Simulator(traffic, started)
    sent: Counter[str] = Counter()
    beaten = 0.0
    headers = [heartbeat.source_header(SOURCE)]  # judged on what its heartbeats vouch for
    try:
        while not stop.is_set():
            now = time.time()
            more = seconds is None or now - started < seconds
            due = sim.due(now, start_new=more)
            acks = [await producer.send(topic, r.key, r.value, headers) for _, r in due]
            await producer.confirm(acks)
            sent.update(r.kind for _, r in due)
            if now - beaten >= HEARTBEAT_SECONDS:
                sent["heartbeat"] += await send_heartbeats(
                    producer, topic, SOURCE, now, HEARTBEAT_SECONDS
                )
                beaten = now
            if not more and not due and not sim.pending:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    finally:
        await producer.stop()
        log.info(
            "simulated", extra=fields(topic=topic, records=dict(sent), stalls=dict(sim.stalls))
        )
