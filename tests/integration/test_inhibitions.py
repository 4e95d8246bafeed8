"""deploy/alertmanager/alertmanager.yml's inhibitions on the real Alertmanager.

Alerts are posted straight to its API, as the service and Prometheus post them; the
supervisors' webhook (tests/integration/test_operations.py's catcher) shows what is
delivered, and the API what is inhibited.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.test_operations import (
    Catcher,
    am_alerts,
    eventually,
    servers,  # noqa: F401 - the fixture
    webhook,  # noqa: F401 - the fixture
)


def post(am_port: int, *alerts: dict[str, str]) -> None:
    """Post alerts (label sets) to Alertmanager's API v2, firing now, once it is up."""
    eventually("Alertmanager up", lambda: _post(am_port, alerts))


def _post(am_port: int, alerts: tuple[dict[str, str], ...]) -> bool:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{am_port}/api/v2/alerts",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return bool(answer.status == 200)


def stall(org: str, interaction: str) -> dict[str, str]:
    """A DialerPreviewStalled as the service of ``org`` posts it."""
    return {
        "alertname": "DialerPreviewStalled",
        "severity": "warning",
        "namespace": "dialer",
        "org": org,
        "topic": "campaign-interactions",
        "campaign": f"c-{interaction}",
        "stage": "previewing",
        "rule": "previewing",
        "interaction_id": interaction,
    }


def delivered(receiver: str) -> set[str]:
    """Interaction ids of the stall alerts delivered to ``receiver`` so far."""
    return {
        alert["labels"]["interaction_id"]
        for notification in Catcher.received
        if notification["receiver"] == receiver
        for alert in notification["alerts"]
        if "interaction_id" in alert["labels"]
    }


def inhibited(am_port: int, interaction: str) -> list[Any]:
    """The alerts inhibiting the stall of ``interaction`` (none: empty)."""
    (alert,) = [
        a
        for a in am_alerts(am_port, "DialerPreviewStalled")
        if a["labels"]["interaction_id"] == interaction
    ]
    by: list[Any] = alert["status"]["inhibitedBy"]
    return by


def test_one_instance_of_three_down_mutes_no_stall_page(
    servers: tuple[int, int, Path],  # noqa: F811
) -> None:
    """1 of 3 down: the instance warning is raised, and stall pages are still delivered."""
    am_port, _, _ = servers
    post(
        am_port,
        {
            "alertname": "DialerMonitorInstanceDown",
            "severity": "warning",
            "job": "interaction-consumer",
            "namespace": "dialer",
            "org": "a",
            "instance": "10.0.0.1:8080",
        },
        stall("a", "i-1"),
    )
    eventually("the stall page delivered", lambda: "i-1" in delivered("dialer-supervisors"))
    assert not inhibited(am_port, "i-1")


def test_one_orgs_silent_source_or_monitor_down_mutes_only_that_orgs_stalls(
    servers: tuple[int, int, Path],  # noqa: F811
) -> None:
    """Org A's source silent and org C's monitor down mute their own stalls, not org B's."""
    am_port, _, _ = servers
    post(
        am_port,
        {
            "alertname": "DialerSourceSilent",
            "severity": "critical",
            "namespace": "dialer",
            "org": "a",
            "topic": "campaign-interactions",
            "source": "genesys-poller",
        },
        {
            "alertname": "DialerMonitorDown",
            "severity": "critical",
            "job": "interaction-consumer",
            "namespace": "dialer",
            "org": "c",
        },
        stall("a", "i-a"),
        stall("b", "i-b"),
        stall("c", "i-c"),
    )
    eventually("org A's stall inhibited", lambda: inhibited(am_port, "i-a"))
    eventually("org C's stall inhibited", lambda: inhibited(am_port, "i-c"))
    eventually("org B's stall page delivered", lambda: "i-b" in delivered("dialer-supervisors"))
    assert not inhibited(am_port, "i-b")
    assert delivered("dialer-supervisors") == {"i-b"}
