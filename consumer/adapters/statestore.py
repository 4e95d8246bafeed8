"""The state store: trackers saved to, and restored from, the compacted changelog topic.

Saving happens once per batch, before offsets are committed: each interaction the batch
changed is encoded as the batch left it, then written (or tombstoned, when it left the
tracker) to the changelog partition numbered like its input partition, and those writes
are acknowledged with the batch's other outputs. Restoring happens when a partition is
assigned: its changelog partition is read from start to end, and the tracker takes the
live interactions back, with the stalls they had fired.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from consumer.adapters.kafka import Sink, read_partition
from consumer.adapters.logs import fields
from consumer.config import KafkaSettings
from consumer.engine import changelog
from consumer.engine.tracker import Tracker
from consumer.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

# (interaction id, saved state or None for a tombstone), as written to the changelog
StateRecord = tuple[bytes, bytes | None]


class StateStore:
    """Saves and restores the trackers of this instance's partitions."""

    def __init__(self, settings: KafkaSettings, sink: Sink, metrics: ConsumerMetrics) -> None:
        self.settings = settings
        self.topic = settings.state_topic_name
        self._sink = sink
        self._metrics = metrics

    def records(self, tracker: Tracker, changed: set[str]) -> list[StateRecord]:
        """The changelog records for the ``changed`` interactions as ``tracker`` has them now.

        Those it no longer holds get a tombstone.
        """
        states, stalled = tracker.states, tracker.stalled
        records = []
        for iid in changed:
            state = states.get(iid)
            value = None if state is None else changelog.encode(state, stalled.get(iid))
            records.append((iid.encode(), value))
        return records

    async def save(self, partition: int, records: list[StateRecord]) -> list[asyncio.Future[Any]]:
        """Write ``records`` to the changelog; the futures complete when acknowledged."""
        self._metrics.state_writes.inc(len(records))
        return await self._sink.send_many(self.topic, partition, records)

    async def restore(self, partition: int, tracker: Tracker) -> int:
        """Give ``tracker`` the interactions saved for ``partition``; returns how many."""
        started = time.monotonic()
        latest = await read_partition(
            self.settings, self.topic, partition, self._metrics.restore_records.inc
        )
        saved = {}
        for key, value in latest.items():
            if value is None:
                continue  # ended: a tombstone compaction has not removed yet
            restored = changelog.decode(value)
            if restored is None:
                self._metrics.state_unreadable.inc()
                continue
            saved[key.decode("utf-8", errors="replace")] = restored
        tracker.restore(saved)
        seconds = time.monotonic() - started
        self._metrics.restore_seconds.observe(seconds)
        log.info(
            "state_restored",
            extra=fields(
                topic=self.topic,
                partition=partition,
                interactions=len(saved),
                records=len(latest),
                seconds=round(seconds, 3),
            ),
        )
        return len(saved)
