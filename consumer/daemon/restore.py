"""Restoring a partition's tracked state from the changelog, when the partition is assigned.

The changelog partition numbered like the input partition is read from start to end
(latest value per key); the live interactions go back into the tracker with the stalls
they had fired (:meth:`~consumer.engine.tracker.Tracker.restore`). A record that cannot be
restored is skipped, never raised, and the rest restore: a value of another format (a
newer writer must not crash an older reader during a rollout), a damaged one, one with a
time that is ``inf`` or NaN, one nested too deep to decode
(:func:`~consumer.engine.changelog.read`), or one the tracker refuses. Compaction keeps
such a record, so every owner meets it on every restore: each is counted by reason
(``dialer_state_records_skipped_total``) and logged with its partition and offset, the
first :data:`LOGGED_SKIPS` of a restore one line each, the rest summed up in one line.
Reading is retried with back-off until it works; the partition is not processed
meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from consumer.adapters.logs import fields
from consumer.backoff import Backoff
from consumer.daemon.ports import StateReader
from consumer.daemon.records import Partition
from consumer.engine import changelog
from consumer.engine.alerting import Fired
from consumer.engine.lifecycle import Interaction
from consumer.engine.tracker import Tracker
from consumer.errors import BrokerError
from consumer.metrics import STATE_REFUSED, ConsumerMetrics

log = logging.getLogger(__name__)

# skipped records logged one line each per restore: a rollback past a format change would
# otherwise log every record of the partition
LOGGED_SKIPS: Final = 10


async def restore(
    reader: StateReader, tp: Partition, tracker: Tracker, metrics: ConsumerMetrics
) -> int:
    """Give ``tracker`` the interactions saved for ``tp``; returns how many."""
    backoff = Backoff(1.0, 30.0)
    started = time.monotonic()
    offsets: dict[bytes, int] = {}
    while True:
        try:
            latest = await reader.read(tp[1], metrics.restore_records.inc, offsets)
            break
        except BrokerError as exc:
            delay = backoff.next()
            log.warning(
                "restore_failed", extra=fields(partition=tp[1], error=str(exc), retry_in=delay)
            )
            await asyncio.sleep(delay)
    skipped: dict[str, int] = {}

    def skip(key: bytes, reason: str) -> None:
        metrics.state_skipped[reason].inc()
        skipped[reason] = skipped.get(reason, 0) + 1
        if sum(skipped.values()) <= LOGGED_SKIPS:
            log.warning(
                "state_record_skipped",
                extra=fields(partition=tp[1], offset=offsets.get(key), reason=reason),
            )

    saved: dict[str, tuple[Interaction, Fired | None]] = {}
    for key, value in latest.items():
        if value is None:
            continue  # ended: a tombstone compaction has not removed yet
        restored = changelog.read(value)
        if isinstance(restored, str):
            skip(key, restored)
            continue
        saved[key.decode("utf-8", errors="replace")] = restored
    for iid in tracker.restore(saved):
        skip(iid.encode(), STATE_REFUSED)
    if sum(skipped.values()) > LOGGED_SKIPS:
        log.warning("state_records_skipped", extra=fields(partition=tp[1], reasons=skipped))
    restored_count = len(saved) - skipped.get(STATE_REFUSED, 0)
    seconds = time.monotonic() - started
    metrics.restore_seconds.observe(seconds)
    log.info(
        "state_restored",
        extra=fields(
            partition=tp[1],
            interactions=restored_count,
            records=len(latest),
            skipped=sum(skipped.values()),
            seconds=round(seconds, 3),
        ),
    )
    return restored_count
