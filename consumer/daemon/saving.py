"""Saving a partition's changed state: what changed, when a save is due, its records.

Changed state is saved every ``save_every`` seconds per partition (the partitions' save
times shifted against each other), each interaction once however often it changed
meanwhile (Kafka Streams' record cache does the same over its commit interval); a
partition's offset in the outputs stays where its saved state ends, so nothing is
committed that a restart could not restore.
"""

from __future__ import annotations

import logging

from consumer.daemon.notices import error
from consumer.daemon.outputs import Notice, Outputs
from consumer.daemon.partition import PartitionState
from consumer.daemon.records import Partition
from consumer.daemon.step_settings import StepSettings
from consumer.formats import changelog


def save(
    tp: Partition,
    state: PartitionState,
    settings: StepSettings,
    out: Outputs,
    monotonic: float,
    *,
    due: bool,
) -> None:
    """Encode the changed state, if ``due`` or a save is: the next batch changes it.

    The changed interactions of every tracker (each saved with its source), then the
    changed heartbeat sources (a retired one as a tombstone). Whatever is not saved
    holds the partition's offset back (``saved_offset``).
    """
    if not settings.persist_state:
        for tracker in state.trackers():
            tracker.dirty.clear()  # nothing is saved: nothing to remember
        state.sources_dirty.clear()
    elif (_dirty(state) or state.sources_dirty) and (
        due or _save_due(settings.save_every, tp[1], state, monotonic)
    ):
        records: list[tuple[bytes, bytes | None]] = []
        lanes = [(None, state.tracker)] + [(n, s.tracker) for n, s in state.lanes.items()]
        for publisher, tracker in lanes:
            if not tracker.dirty:
                continue
            changed = tracker.take_dirty()
            encoded, failed = changelog.encode_changed(
                changed, tracker.states, tracker.stalled, publisher
            )
            records += encoded
            for iid, exc in failed:
                out.notices.append(
                    Notice(logging.ERROR, "state_unsaved", {"interaction": iid} | error(exc))
                )
        for name in state.sources_dirty:
            source = state.sources.get(name)
            value = None if source is None else changelog.encode_source(source)
            records.append((changelog.source_key(name), value))
        state.sources_dirty.clear()
        out.states[tp[1]] = records
        state.saved_at = monotonic
    if not state.sources_dirty and not _dirty(state):
        state.saved_offset = state.next_offset


def _dirty(state: PartitionState) -> bool:
    """Some interaction of the partition changed since it was last saved."""
    return bool(state.tracker.dirty) or any(lane.tracker.dirty for lane in state.lanes.values())


def _save_due(every: float, partition: int, state: PartitionState, monotonic: float) -> bool:
    """Whether one of the partition's save times passed since its last save.

    Its save times are every ``every`` seconds, shifted by a fraction of the interval
    that differs from partition to partition (the golden ratio's multiples spread any
    number of them), so an instance's partitions save in different batches. Unshifted,
    four partitions' saves made one batch of 95-140 ms every 5 s at 25k records/s, and
    the records behind it waited that long.
    """
    if every <= 0.0 or state.saved_at == float("-inf"):
        return True
    shift = every * ((partition * 0.618034) % 1.0)
    # the first save time after the last save; counting intervals with ``//`` instead
    # overflows to inf for the tiniest intervals, and inf > inf would never save again
    last = state.saved_at
    return monotonic >= last + every - (last + shift) % every
