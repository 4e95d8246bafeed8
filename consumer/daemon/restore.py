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
(:func:`~consumer.formats.changelog.read`), or one the tracker refuses. Compaction keeps
such a record, so every owner meets it on every restore: each is counted by reason
(``dialer_state_records_skipped_total``) and logged with its partition, offset and key
(the interaction id, which a tombstone for it needs), the first :data:`LOGGED_SKIPS` of a
restore one line each, the rest summed up in one line.
Reading is retried with back-off until it works; the partition is not processed
meanwhile.

What was read is decoded, then handed to the tracker, :data:`CHUNK` records at a time,
the event loop served between two chunks (a million interactions held it 15 s in one
piece, with ``/healthz`` unanswered); ``progress`` hears how far it got, for readiness.
The tracker takes them least recently seen first, each chunk sorted as it is decoded and
the chunks merged, so that past the process's budget the newest win
(:meth:`~consumer.engine.tracker.Tracker.restore`). The raw records are let go of as
they are decoded.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Final

from consumer.backoff import Backoff
from consumer.daemon.metrics import STATE_REFUSED, ConsumerMetrics
from consumer.daemon.ports import StateReader
from consumer.daemon.records import Partition
from consumer.engine.alerting import Fired
from consumer.engine.interaction import Interaction
from consumer.engine.sources import SourceState
from consumer.engine.tracker import Tracker, restore_order
from consumer.errors import BrokerError
from consumer.formats import changelog
from consumer.observe.logs import fields

log = logging.getLogger(__name__)

# skipped records logged one line each per restore: a rollback past a format change would
# otherwise log every record of the partition
LOGGED_SKIPS: Final = 10
# records decoded, or interactions restored, between two turns of the event loop: about
# 0.1 s of work compiled, 0.3 s uncompiled
CHUNK: Final = 10_000

# an interaction as decoded: its id, its state and fired stall, the source it was saved with
_Saved = tuple[str, tuple[Interaction, Fired | None], str | None]


async def restore(
    reader: StateReader,
    tp: Partition,
    tracker: Tracker,
    metrics: ConsumerMetrics,
    sources: dict[str, SourceState] | None = None,
    tracker_of: Callable[[str], Tracker] | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Give ``tracker`` the interactions saved for ``tp``, ``sources`` its heartbeat sources.

    An interaction saved with its source goes to ``tracker_of`` that source instead
    (without it, to ``tracker``). ``progress`` hears how far it got, in words ("12000 of
    50000 records decoded"). Returns how many interactions were restored (some may have
    been shed since, past the budget).
    """
    started = time.monotonic()
    latest = await _read(reader, tp, metrics.restore_records.inc)
    records = len(latest)
    skipped: list[tuple[bytes, str]] = []  # (key, reason)
    runs: list[list[_Saved]] = []  # the interactions decoded, each chunk sorted
    if sources is None:
        sources = {}
    pending = iter(latest.items())
    done = 0
    while done < records:
        run: list[_Saved] = []
        for key, value in itertools.islice(pending, CHUNK):
            done += 1
            if value is None:
                continue  # ended: a tombstone compaction has not removed yet
            latest[key] = None  # the raw record is let go of once decoded
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
            if tracker_of is None:
                publisher = None
            run.append((key.decode("utf-8", errors="replace"), (interaction, fired), publisher))
        run.sort(key=_order)
        runs.append(run)
        await _turn(progress, f"{done} of {records} records decoded")
    latest.clear()
    interactions = 0
    refused: list[str] = []
    decoded = sum(len(run) for run in runs)
    merged = heapq.merge(*runs, key=_order)
    runs.clear()
    while True:
        chunk = list(_take(merged, CHUNK))
        if not chunk:
            break
        interactions += len(chunk)
        refused += _restore_chunk(chunk, tracker, tracker_of)
        await _turn(progress, f"{interactions} of {decoded} interactions restored")
    skipped += [(iid.encode(), STATE_REFUSED) for iid in refused]
    if skipped:
        await _report(reader, tp, skipped, metrics)
    seconds = time.monotonic() - started
    metrics.restore_seconds.observe(seconds)
    log.info(
        "state_restored",
        extra=fields(
            partition=tp[1],
            interactions=interactions - len(refused),
            records=records,
            sources=len(sources),
            skipped=len(skipped),
            seconds=round(seconds, 3),
        ),
    )
    return interactions - len(refused)


def _order(item: _Saved) -> float:
    return restore_order(item[1])


def _restore_chunk(
    chunk: list[_Saved], tracker: Tracker, tracker_of: Callable[[str], Tracker] | None
) -> list[str]:
    """Give each interaction of ``chunk`` to its source's tracker; the ids refused."""
    by_source: dict[str | None, dict[str, tuple[Interaction, Fired | None]]] = {}
    for iid, saved, publisher in chunk:
        by_source.setdefault(publisher, {})[iid] = saved
    refused: list[str] = []
    for publisher, group in by_source.items():
        owner = tracker if publisher is None or tracker_of is None else tracker_of(publisher)
        refused += owner.restore(group)
    return refused


def _take(items: Iterator[_Saved], n: int) -> Iterator[_Saved]:
    for _, item in zip(range(n), items, strict=False):
        yield item


async def _turn(progress: Callable[[str], None] | None, done: str) -> None:
    """Say how far the restore got, and let the event loop serve the others."""
    if progress is not None:
        progress(done)
    await asyncio.sleep(0)


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
