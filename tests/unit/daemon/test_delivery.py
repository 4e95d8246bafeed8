"""Delivery formats the engine's events for the outside, at the edge, one bad event alone."""

from __future__ import annotations

import logging

from consumer.daemon.delivery import Delivery
from consumer.daemon.outputs import AlertEvent
from consumer.engine.alerting import StallEvent
from consumer.engine.sources import SourceEvent
from consumer.engine.stages import Stage
from consumer.engine.stalls import Stall
from consumer.formats.alerts import Alert, SourceAlert
from consumer.testing.logs import capture_logs, events_named
from consumer.testing.rig import T0


def stall_event(interaction: str, since: float) -> StallEvent:
    """A previewing stall firing on ``interaction``, counting from ``since``."""
    stall = Stall("previewing", Stage.PREVIEWING, since, since, 10.0)
    return StallEvent(
        "firing", interaction, stall, since + 10, since + 10, "c-1", None, None, None, "preview"
    )


def test_events_become_wire_alerts_and_one_that_cannot_is_logged_and_left_out() -> None:
    """A stall whose time cannot be written is logged (no traceback of content); the rest go."""
    silent = SourceEvent("firing", "interactions", "poller", T0, 30.0, T0 + 40, 40.0)
    events: list[AlertEvent] = [stall_event("good", T0), stall_event("broken", 1e300), silent]
    with capture_logs(logging.ERROR) as logged:
        alerts = Delivery.formatted(events)
    assert [type(a) for a in alerts] == [Alert, SourceAlert]
    assert isinstance(alerts[0], Alert)
    assert alerts[0].interaction_id == "good"
    (line,) = events_named(logged, "alert_unformattable")
    assert (line["interaction"], line["rule"]) == ("broken", "previewing")
