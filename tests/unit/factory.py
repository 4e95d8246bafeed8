"""Builders for engine-level tests: snapshots at offsets from one base moment."""

from __future__ import annotations

from collections.abc import Mapping

from consumer.engine.alerting import StallEvent
from consumer.engine.limits import Limits
from consumer.engine.lists import NO_LIST, list_number
from consumer.engine.observations import Observations
from consumer.engine.snapshot import Snapshot
from consumer.engine.stages import STAGES, Stage
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker

T0 = 1_795_600_000.0  # 2026-11-25T09:46:40Z: any fixed moment works


def snap(
    iid: str = "i-1",
    *,
    mode: str | None = "preview",
    active: bool | None = True,
    campaign: str | None = "c-1",
    agent: str | None = "a-1",
    queue: str | None = "q-1",
    conversation_ended: float | None = None,
    times: Mapping[str, float] | None = None,
    bucket: str | None = None,
    **offsets: float,
) -> Snapshot:
    """A snapshot whose stage times are ``T0 + offset``, named by stage label.

    Offsets come as keywords, or as a ``times`` mapping when they are data; ``bucket``
    names the API list its record's header gave (none by default).
    """
    offsets = {**(times or {}), **offsets}
    unknown = set(offsets) - {s.label for s in STAGES}
    assert not unknown, f"not a stage: {unknown}"
    moments = tuple(
        None if stage.label not in offsets else T0 + offsets[stage.label] for stage in STAGES
    )
    return Snapshot(
        interaction_id=iid,
        campaign_id=campaign,
        campaign_name=None if campaign is None else campaign.upper(),
        agent_id=agent,
        queue_id=queue,
        dialing_mode=mode,
        active=active,
        times=moments,
        conversation_ended=None if conversation_ended is None else T0 + conversation_ended,
        bucket=NO_LIST if bucket is None else list_number(bucket),
    )


def tracker(policy: StallPolicy | None = None, *, ttl: float = 3600.0, cap: int = 1000) -> Tracker:
    """A tracker with its own observations and small limits."""
    return Tracker(policy or StallPolicy(), Limits(ttl, cap), Observations())


def stage_of(t: Tracker, iid: str = "i-1") -> Stage | None:
    """The tracked stage of ``iid``, or ``None`` when it is not tracked."""
    state = t.states.get(iid)
    return None if state is None else state.stage


def statuses(events: list[StallEvent]) -> list[tuple[str, str, str]]:
    """(status, interaction, rule) of each stall event, in order."""
    return [(e.status, e.interaction_id, e.stall.rule) for e in events]
