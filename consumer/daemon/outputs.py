"""What one batch caused: the outputs the batch step hands to delivery.

Alerts, dead letters, re-keyed records and saved state must all be acknowledged before the
batch's offsets may be committed (:mod:`consumer.daemon.ledger`); notices are log lines the
pure step asks for; the counts feed metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from consumer.daemon.records import Partition, Record, StateRecord
from consumer.engine.alerting import StallEvent
from consumer.engine.model import Invalid
from consumer.engine.sources import SourceEvent

AlertEvent = StallEvent | SourceEvent  # what the engine says of a stall or a source


class Notice(NamedTuple):
    """One log line the step asks for: level, event name, fields."""

    level: int
    event: str
    fields: dict[str, Any]


class DeadLetter(NamedTuple):
    """An input record that cannot be tracked, and why."""

    record: Record
    invalid: Invalid


@dataclass
class Outputs:
    """What one batch caused; its offsets may be committed once the rest is acknowledged."""

    # stalls and silent sources, firing or resolved: formatted for the outside by delivery
    events: list[AlertEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # (key, value, timestamp ms) to re-key into the repartition topic
    forwards: list[tuple[bytes, bytes | None, int]] = field(default_factory=list)
    # once delivered: repartition partition -> the offset after its last record forwarded
    forwarded: dict[Partition, int] = field(default_factory=dict)
    # changelog records by partition: the state as this batch left it
    states: dict[int, list[StateRecord]] = field(default_factory=dict)
    offsets: dict[Partition, int] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    records: int = 0
    heartbeats: int = 0
    # heartbeats not believed, by reason: "interval" (outside the range), "retired" (source)
    heartbeats_ignored: dict[str, int] = field(default_factory=dict)
    # partition -> records with a timestamp (record or snapshot) from the future
    future: dict[Partition, int] = field(default_factory=dict)
    misrouted: int = 0
    # wall time applied minus record timestamp, of each record applied (seconds)
    applied_delays: list[float] = field(default_factory=list)
    # when each stall fired in this batch came due, for the threshold-to-alert delay
    fired_due: list[float] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to deliver: only offsets (or nothing) to commit."""
        return not (self.events or self.dead_letters or self.forwards or self.states)
