"""A heartbeat record read by the step: counted, then believed or ignored; never a dead letter.

A believed heartbeat vouches for its source's time on the partition (the clock runs no
further than its sources vouch: :mod:`consumer.engine.clock`). One is ignored, counted by
reason, when its source is retired, its interval is outside 0.1 s - 1 h, or the partition
already keeps :data:`~consumer.engine.sources.MAX_SOURCES` sources; an unreadable one or
one from the future is warned about.
"""

from __future__ import annotations

from consumer.daemon.notices import future, warn, where
from consumer.daemon.outputs import Outputs
from consumer.daemon.partition import PartitionState
from consumer.daemon.records import Partition, Record
from consumer.daemon.step_settings import StepSettings
from consumer.engine.sources import MAX_SOURCES, SourceState, interval_believed, vouched
from consumer.formats import heartbeat


def heard(
    tp: Partition,
    state: PartitionState,
    record: Record,
    out: Outputs,
    wall: float,
    settings: StepSettings,
) -> bool:
    """Count a heartbeat and let it vouch for its source's time; never a dead letter.

    ``True`` when it moved its source on: the topic's watch judges the partition's
    silences from now on.
    """
    out.heartbeats += 1
    beat = heartbeat.decode(record.value)
    if beat is None:
        warn(state, out, wall, "heartbeat_unreadable", where(record))
        return False
    if beat.source in settings.retired_sources:
        _ignored(out, "retired")
        return False
    if not interval_believed(beat.interval_seconds):
        _ignored(out, "interval")
        context = where(record) | {
            "source": beat.source,
            "interval_seconds": beat.interval_seconds,
            "hint": "intervalSeconds must lie within 0.1 s - 1 h: the heartbeat is ignored",
        }
        warn(state, out, wall, "heartbeat_interval_refused", context)
        return False
    up_to = beat.up_to_epoch
    if not state.clock.credible(up_to, wall):
        future(tp, state, record, out, wall, settings.max_clock_skew)
        return False
    state.clock.record(record.timestamp / 1000.0, wall)
    source = state.sources.get(beat.source)
    if source is None and len(state.sources) >= MAX_SOURCES:
        _ignored(out, "too_many_sources")
        context = where(record) | {
            "source": beat.source,
            "hint": f"a partition keeps {MAX_SOURCES} heartbeat sources at most",
        }
        warn(state, out, wall, "heartbeat_sources_exceeded", context)
        return False
    if source is None:
        state.sources[beat.source] = SourceState(up_to, beat.interval_seconds)
    elif up_to > source.up_to:
        source.up_to, source.interval = up_to, beat.interval_seconds
    else:
        return False  # an older or repeated heartbeat: nothing new
    state.sources_dirty.add(beat.source)
    state.clock.vouch(vouched(state.sources))
    return True


def _ignored(out: Outputs, reason: str) -> None:
    out.heartbeats_ignored[reason] = out.heartbeats_ignored.get(reason, 0) + 1
