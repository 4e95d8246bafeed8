"""The alert record as the outside world sees it, built at the edge from engine events.

Log lines, the alerts topic, ``/stalled``, ``replay`` output and Alertmanager posts all
use it.

The engine emits plain :class:`~consumer.engine.alerting.StallEvent` values (epoch floats,
ids, rule, stage); this module turns each into the wire record: camelCase keys, ISO-8601 UTC
times with milliseconds, and a stable ``alertId``. The same stall (interaction, rule, start
time) always has the same ``alertId``, so a replayed or re-sent alert is recognisably the
same alert. Ids and stage names only: never phone numbers or contact names.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

import msgspec

from consumer.engine.alerting import Resolution, StallEvent, Status
from consumer.engine.model import iso
from consumer.engine.sources import SourceEvent, SourceStatus
from consumer.engine.stalls import Stall


class Alert(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One stall alert record, as it is written to logs and the alerts topic."""

    status: Status
    alert_id: str
    interaction_id: str
    campaign_id: str | None
    campaign_name: str | None
    agent_id: str | None
    queue_id: str | None
    dialing_mode: str | None
    stage: str
    rule: str
    stage_entered_at: str | None
    stalled_since: str
    threshold_seconds: float
    stalled_for_seconds: float
    observed_at: str
    resolution: Resolution | None = None


def alert_id(interaction_id: str, stall: Stall) -> str:
    """Stable id of a stall: same interaction, rule and start, same id."""
    key = f"{interaction_id}\0{stall.rule}\0{stall.since!r}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def to_alert(event: StallEvent) -> Alert:
    """The wire record of one engine event."""
    stall = event.stall
    return Alert(
        status=event.status,
        alert_id=alert_id(event.interaction_id, stall),
        interaction_id=event.interaction_id,
        campaign_id=event.campaign,
        campaign_name=event.campaign_name,
        agent_id=event.agent,
        queue_id=event.queue,
        dialing_mode=event.mode,
        stage=stall.stage.label,
        rule=stall.rule,
        stage_entered_at=None if stall.entered is None else iso(stall.entered),
        stalled_since=iso(stall.since),
        threshold_seconds=stall.threshold,
        stalled_for_seconds=round(event.stalled_for, 3),
        observed_at=iso(event.observed_at),
        resolution=event.resolution,
    )


_encoder: Final = msgspec.json.Encoder()


def encode_alert(alert: Alert | SourceAlert) -> bytes:
    """The alert record as one line of JSON (no trailing newline)."""
    return _encoder.encode(alert)


class SourceAlert(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A heartbeat source gone silent (``firing``) or heard again (``resolved``).

    The same family as :class:`Alert`: ``status``, ``alertId``, ``rule``, ``observedAt``;
    one per topic and source, however many interactions are in flight.
    """

    status: SourceStatus
    alert_id: str
    rule: Literal["source_silent"]
    topic: str
    source_id: str
    last_heartbeat_at: str
    threshold_seconds: float
    silent_for_seconds: float
    observed_at: str
    resolution: Literal["retired"] | None = None  # resolved because an operator retired it


AnyAlert = Alert | SourceAlert


def to_source_alert(event: SourceEvent) -> SourceAlert:
    """The wire record of one source event; the same silence keeps the same ``alertId``."""
    key = f"{event.topic}\0{event.source}\0{event.last_up_to!r}".encode()
    return SourceAlert(
        status=event.status,
        alert_id=hashlib.blake2b(key, digest_size=8).hexdigest(),
        rule="source_silent",
        topic=event.topic,
        source_id=event.source,
        last_heartbeat_at=iso(event.last_up_to),
        threshold_seconds=event.threshold,
        silent_for_seconds=round(event.silent_for, 3),
        observed_at=iso(event.observed_at),
        resolution="retired" if event.resolution == "retired" else None,
    )


def to_wire(event: StallEvent | SourceEvent) -> AnyAlert:
    """The wire record of either kind of engine event."""
    if isinstance(event, SourceEvent):
        return to_source_alert(event)
    return to_alert(event)
