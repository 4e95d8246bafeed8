"""Offline replay: feed a dump of the topic through the engine on the dump's own clock.

Each line is a bare ``CampaignInteraction`` object or a record envelope as
``kcat -C -J`` writes it (``topic``, ``partition``, ``offset``, ``ts`` in epoch
milliseconds, ``key``, ``payload`` as a string or null for a tombstone). The clock is
event time: the record's ``ts`` where the line has one, else the newest lifecycle time in
the snapshot; it only moves forward. Each record is applied at that time, then every
stall due by then fires, so alerts come out in the order they were observed.

All partitions of a dump share one tracker: offline there is no ownership to respect,
and a producer that keys badly still gets every snapshot of an interaction merged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from prometheus_client import CollectorRegistry

from consumer import config
from consumer.adapters.alerts import Alert, to_alert
from consumer.engine.alerting import REMOVALS, StallEvent
from consumer.engine.lifecycle import STAGES, Snapshot
from consumer.engine.model import Invalid, decode_record
from consumer.engine.tracker import Observations, Tracker
from consumer.metrics import EngineMetrics
from consumer.policy import stall_policy, tracker_limits


class _Envelope(msgspec.Struct):
    """The fields of a ``kcat -J`` line that replay needs.

    A bare snapshot has neither ``topic`` nor ``payload``.
    """

    topic: str | msgspec.UnsetType = msgspec.UNSET
    ts: int | None = None
    key: str | None = None
    payload: str | msgspec.UnsetType | None = msgspec.UNSET


_envelope: Final = msgspec.json.Decoder(_Envelope)


def _unwrap(line: bytes) -> tuple[str | None, bytes | str | None, float | None]:
    """(key, value, timestamp in seconds) of one line; a bare snapshot has neither key nor ts."""
    try:
        envelope = _envelope.decode(line)
    except msgspec.MsgspecError:
        return None, line, None  # not an envelope: decoding it as a snapshot says why
    if envelope.topic is msgspec.UNSET or envelope.payload is msgspec.UNSET:
        return None, line, None
    ts = None if envelope.ts is None else envelope.ts / 1000.0
    return envelope.key, envelope.payload, ts


class Replay:
    """One replay run: a tracker, its metrics, and running totals for the summary."""

    def __init__(
        self,
        settings: config.Settings,
        registry: CollectorRegistry,
        emit: Callable[[Alert], None],
        report: Callable[[str], None],
    ) -> None:
        self.obs = Observations()
        self.tracker = Tracker(stall_policy(settings), tracker_limits(settings), self.obs)
        self.metrics = EngineMetrics(
            registry, lambda: [self.tracker], settings.metrics.max_campaign_labels
        )
        self.emit = emit
        self.report = report
        self.clock = 0.0
        self.records = 0
        self.invalid = 0
        self.alerts = {"firing": 0, "resolved": 0}
        self.removed: dict[str, int] = dict.fromkeys(REMOVALS, 0)

    def line(self, where: str, raw: bytes) -> None:
        """Feed one line; ``where`` (file:line) names it in the report of an invalid one."""
        if not raw.strip():
            return
        self.records += 1
        key, value, ts = _unwrap(raw)
        item = decode_record(key, value)
        if isinstance(item, Invalid):
            self.invalid += 1
            self.obs.events["invalid"] += 1
            self.report(f"{where}: invalid record ({item.reason}): {item.detail}")
            return
        moment = ts if ts is not None else item.version if isinstance(item, Snapshot) else 0.0
        self.clock = max(self.clock, moment)
        self._send(self.tracker.ingest(item, self.clock))

    def advance(self, now: float) -> None:
        """Move the clock forward to ``now`` and fire what is due by then."""
        self.clock = max(self.clock, now)
        self._send(self.tracker.tick(self.clock))

    def _send(self, events: list[StallEvent]) -> None:
        for event in events:
            self.alerts[event.status] += 1
            self.emit(to_alert(event))

    def finish(self) -> None:
        """Flush what was observed into the metrics."""
        obs = self.obs.drain()
        for reason, n in obs.removals.items():
            self.removed[reason] += n
        self.metrics.record(obs)

    def summary(self) -> str:
        """Records, invalid, interactions per final stage, removals and alerts, one line."""
        counts = self.tracker.stage_counts
        stages = " ".join(f"{stage.label}={counts[stage]}" for stage in STAGES)
        removed = " ".join(f"{reason}={n}" for reason, n in self.removed.items())
        return (
            f"replay: {self.records} records, {self.invalid} invalid; "
            f"tracked at end: {stages}; removed: {removed}; "
            f"alerts: {self.alerts['firing']} firing, {self.alerts['resolved']} resolved"
        )
