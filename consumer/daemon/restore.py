"""Restoring a partition's tracked state from the changelog, when the partition is assigned.

The changelog partition numbered like the input partition is read from start to end
(latest value per key); the live interactions go back, with the stalls they had fired
(:meth:`~consumer.engine.tracker.Tracker.restore`), into the tracker of the heartbeat
source that published them (or the one for records that named none), and its heartbeat
sources go into ``sources``, for the step to bound the partition's clock with before it
judges anything (:meth:`~consumer.daemon.step.Step.restored`). A record that cannot be
restored is skipped, never raised, and the rest restore: a value of another format (a
newer writer must not crash an older reader during a rollout), a damaged one, one with a
time that is ``inf`` or NaN, one nested too deep to decode
(:func:`~consumer.engine.changelog.read`), or one the tracker refuses. Compaction keeps
such a record, so every owner meets it on every restore: each is counted by reason
(``dialer_state_records_skipped_total``) and logged with its partition, offset and key
(the interaction id, which a tombstone for it needs), the first :data:`LOGGED_SKIPS` of a
restore one line each, the rest summed up in one line.
Reading is retried with back-off until it works; the partition is not processed
meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

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
from consumer.metrics import STATE_REFUSED, ConsumerMetrics

log = logging.getLogger(__name__)

# skipped records logged one line each per restore: a rollback past a format change would
# otherwise log every record of the partition
LOGGED_SKIPS: Final = 10


async def restore(
    reader: StateReader,
    tp: Partition,
    tracker: Tracker,
    metrics: ConsumerMetrics,
    sources: dict[str, SourceState] | None = None,
    tracker_of: Callable[[str], Tracker] | None = None,
) -> int:
    """Give ``tracker`` the interactions saved for ``tp``, ``sources`` its heartbeat sources.

    An interaction saved with its source goes to ``tracker_of`` that source instead
    (without it, to ``tracker``). Returns how many interactions.
    """
    started = time.monotonic()
    latest = await _read(reader, tp, metrics.restore_records.inc)
    skipped: list[tuple[bytes, str]] = []  # (key, reason)
    saved: dict[str, tuple[Interaction, Fired | None]] = {}
    by_source: dict[str, dict[str, tuple[Interaction, Fired | None]]] = {}
    if sources is None:
        sources = {}
    for key, value in latest.items():
        if value is None:
            continue  # ended: a tombstone compaction has not removed yet
        source = changelog.source_of(key)
        if source is not None:
            state = changelog.read_source(value)
            if isinstance(state, str):
                skipped.append((key, state))
            else:
                sources[source] = state
            continue
        restored = changelog.read_sourced(value)
        if isinstance(restored, str):
            skipped.append((key, restored))
            continue
        interaction, fired, publisher = restored
        group = saved
        if publisher is not None and tracker_of is not None:
            group = by_source.get(publisher) or by_source.setdefault(publisher, {})
        group[key.decode("utf-8", errors="replace")] = (interaction, fired)
    refused = tracker.restore(saved)
    for publisher, group in by_source.items():
        assert tracker_of is not None
        refused += tracker_of(publisher).restore(group)
    skipped += [(iid.encode(), STATE_REFUSED) for iid in refused]
    if skipped:
        await _report(reader, tp, skipped, metrics)
    seconds = time.monotonic() - started
    total = len(saved) + sum(len(group) for group in by_source.values())
    metrics.restore_seconds.observe(seconds)
    log.info(
        "state_restored",
        extra=fields(
            partition=tp[1],
            interactions=total - len(refused),
            records=len(latest),
            sources=len(sources),
            skipped=len(skipped),
            seconds=round(seconds, 3),
        ),
    )
    return total - len(refused)


async def _read(
    reader: StateReader,
    tp: Partition,
    progress: Callable[[int], None],
    offsets: dict[bytes, int] | None = None,
) -> dict[bytes, bytes | None]:
    """The partition's latest value per key, the read retried with back-off until it works."""
    backoff = Backoff(1.0, 30.0)
    while True:
        try:
            return await reader.read(tp[1], progress, offsets)
        except BrokerError as exc:
            delay = backoff.next()
            log.warning(
                "restore_failed", extra=fields(partition=tp[1], error=str(exc), retry_in=delay)
            )
            await asyncio.sleep(delay)


async def _report(
    reader: StateReader,
    tp: Partition,
    skipped: list[tuple[bytes, str]],
    metrics: ConsumerMetrics,
) -> None:
    """Count the records skipped; log the first :data:`LOGGED_SKIPS` with their offsets.

    The offsets take a second read of the partition, for those keys only: a restore with
    no bad record pays nothing for them (keeping every key's offset on the way cost 74 MB
    a million interactions).
    """
    reasons: dict[str, int] = {}
    for _, reason in skipped:
        metrics.state_skipped[reason].inc()
        reasons[reason] = reasons.get(reason, 0) + 1
    shown = skipped[:LOGGED_SKIPS]
    offsets = dict.fromkeys((key for key, _ in shown), -1)  # filled by the reader
    await _read(reader, tp, _uncounted, offsets)
    for key, reason in shown:
        at = offsets[key]
        log.warning(
            "state_record_skipped",
            extra=fields(
                partition=tp[1],
                offset=None if at < 0 else at,
                interaction=key.decode("utf-8", errors="replace"),
                reason=reason,
            ),
        )
    if len(skipped) > len(shown):
        log.warning(
            "state_records_skipped",
            extra=fields(partition=tp[1], skipped=len(skipped), reasons=reasons),
        )


def _uncounted(records: int) -> None:
    """Progress of the second read, which the restore metrics leave out."""
