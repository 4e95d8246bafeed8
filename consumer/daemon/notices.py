"""The step's warnings about a producer's records: at most one a minute per partition and event.

A flood of bad records (future timestamps, unreadable heartbeats) is counted, not logged
line by line; a warning names the record (topic, partition, offset), never its content.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from consumer.daemon.outputs import Notice, Outputs
from consumer.daemon.partition import PartitionState
from consumer.daemon.records import Partition, Record
from consumer.engine.model import engine_error

# a warning about one partition's records (future timestamps, unreadable heartbeats) is
# repeated at most this often: a flood of bad records is counted, not logged line by line
WARNING_EVERY: Final = 60.0


def warn(
    state: PartitionState, out: Outputs, wall: float, event: str, context: dict[str, Any]
) -> None:
    """A warning about a producer's records, at most once a minute per partition."""
    if wall - state.warned.get(event, float("-inf")) >= WARNING_EVERY:
        state.warned[event] = wall
        out.notices.append(Notice(logging.WARNING, event, context))


def future(
    tp: Partition,
    state: PartitionState,
    record: Record,
    out: Outputs,
    wall: float,
    max_clock_skew: float,
) -> None:
    """Count a record whose time is not believed (from the future), and warn about it."""
    out.future[tp] = out.future.get(tp, 0) + 1
    context = where(record) | {
        "timestamp_ms": record.timestamp,
        "max_clock_skew_seconds": max_clock_skew,
        "hint": "a producer's clock runs ahead: the record is applied, its time not believed",
    }
    warn(state, out, wall, "timestamp_from_the_future", context)


def where(record: Record) -> dict[str, Any]:
    """The fields that name a record in a notice."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def error(exc: Exception) -> dict[str, Any]:
    """The fields that name an exception in a notice (never a record's content)."""
    return {"error": engine_error(exc).detail}
