"""Producers that do not key by interaction id: detected, and made harmless by repartitioning."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.integration.harness import (
    Broker,
    Daemon,
    Sent,
    alerts,
    create_topic,
    produce,
    read_topic,
)
from tests.integration.test_daemon import FAST, committed_everything, snapshot


def scattered(iid: str, **times: float) -> list[Sent]:
    """The snapshots of one interaction, each on another partition under a wrong key."""
    steps = []
    known: dict[str, float] = {}
    for n, (stage, moment) in enumerate(times.items()):
        known[stage] = moment
        record = snapshot(iid, at=known)
        steps.append(
            Sent(f"wrong-key-{n}".encode(), record.value, record.timestamp, partition=n % 3)
        )
    return steps


def test_misrouted_snapshots_are_counted_and_warned_once(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Snapshots keyed by something else than their id are counted; one warning per interaction."""
    now = time.time()
    produce(
        broker, topic, scattered("drifter", created=now - 3, previewing=now - 2, placed=now - 1)
    )
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    assert committed_everything(broker, topic, daemon.group)
    misrouted = daemon.metric("dialer_misrouted_records_total")
    warnings = [e for e in daemon.log_events() if e["event"] == "misrouted_snapshot"]
    assert daemon.stop() == 0
    assert misrouted == 3
    assert [w["interaction"] for w in warnings] == ["drifter"]


def test_repartition_mode_tracks_badly_keyed_interactions_whole(
    broker: Broker, tmp_path: Path
) -> None:
    """With repartitioning, an interaction scattered over partitions is tracked as one."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=3)
    now = time.time()
    # placed in time, then routed and connected in time: by itself, no stall at all; seen
    # in pieces by different owners, the pieces would look stalled
    produce(
        broker,
        topic,
        scattered(
            "scattered", created=now - 9, previewing=now - 8, placed=now - 7, connected=now - 6
        )
        + scattered("stuck", created=now - 9, previewing=now - 8),
    )
    settings = {**FAST, "KAFKA_REPARTITION": "true"}
    group = f"group-{uuid.uuid4().hex[:8]}"
    daemons = [
        Daemon(broker, topic, settings, group=group).start(tmp_path / f"daemon-{n}.log")
        for n in range(2)
    ]
    assert committed_everything(broker, topic, group)
    time.sleep(4)  # past every threshold of the scattered interaction's early stages
    records = read_topic(broker, daemons[0].alerts_topic)
    for daemon in daemons:
        assert daemon.stop() == 0
    firing = [(a["interactionId"], a["rule"]) for a in alerts(records) if a["status"] == "firing"]
    assert firing == [("stuck", "previewing")]
