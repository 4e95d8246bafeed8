"""Restoring a partition's tracked state from the changelog, when the partition is assigned.

The changelog partition numbered like the input partition is read from start to end
(latest value per key); the live interactions go back into the tracker with the stalls
they had fired (:meth:`~consumer.engine.tracker.Tracker.restore`), and its heartbeat
sources go into ``sources``, for the step to bound the partition's clock with before it
judges anything (:meth:`~consumer.daemon.step.Step.restored`). A value that cannot be
read (another format, damage) is skipped and counted, never raised: a newer writer must
not crash an older reader during a rollout. Reading is retried with back-off until it
works; the partition is not processed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time

from consumer.adapters.logs import fields
from consumer.backoff import Backoff
from consumer.daemon.ports import StateReader
from consumer.daemon.records import Partition
from consumer.engine import changelog
from consumer.engine.alerting import Fired
from consumer.engine.lifecycle import Interaction
from consumer.engine.sources import SourceState
from consumer.engine.tracker import Tracker
from consumer.errors import BrokerError
from consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)


async def restore(
    reader: StateReader,
    tp: Partition,
    tracker: Tracker,
    metrics: ConsumerMetrics,
    sources: dict[str, SourceState] | None = None,
) -> int:
    """Give ``tracker`` the interactions saved for ``tp``, ``sources`` its heartbeat sources.

    Returns how many interactions.
    """
    backoff = Backoff(1.0, 30.0)
    started = time.monotonic()
    while True:
        try:
            latest = await reader.read(tp[1], metrics.restore_records.inc)
            break
        except BrokerError as exc:
            delay = backoff.next()
            log.warning(
                "restore_failed", extra=fields(partition=tp[1], error=str(exc), retry_in=delay)
            )
            await asyncio.sleep(delay)
    saved: dict[str, tuple[Interaction, Fired | None]] = {}
    if sources is None:
        sources = {}
    for key, value in latest.items():
        if value is None:
            continue  # ended: a tombstone compaction has not removed yet
        source = changelog.source_of(key)
        if source is not None:
            state = changelog.decode_source(value)
            if state is None:
                metrics.state_unreadable.inc()
            else:
                sources[source] = state
            continue
        restored = changelog.decode(value)
        if restored is None:
            metrics.state_unreadable.inc()
            continue
        saved[key.decode("utf-8", errors="replace")] = restored
    tracker.restore(saved)
    seconds = time.monotonic() - started
    metrics.restore_seconds.observe(seconds)
    log.info(
        "state_restored",
        extra=fields(
            partition=tp[1],
            interactions=len(saved),
            sources=len(sources),
            records=len(latest),
            seconds=round(seconds, 3),
        ),
    )
    return len(saved)
