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
    wait_for,
)
from tests.integration.test_daemon import FAST, committed_everything, sentinels, snapshot


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
    settings = {**FAST, "KAFKA_REPARTITION": "true"}
    group = f"group-{uuid.uuid4().hex[:8]}"
    daemons = [
        Daemon(broker, topic, settings, group=group).start(tmp_path / f"daemon-{n}.log")
        for n in range(2)
    ]
    for daemon in daemons:
        daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    # a producer keying badly publishes each step as it happens, each on another partition:
    # placed in time, then routed and connected in time, so by itself no stall at all;
    # seen in pieces by different owners, the pieces would look stalled
    steps = ("created", "previewing", "placed", "connected")
    known: dict[str, float] = {}
    for n, stage in enumerate(steps):
        known[stage] = time.time()
        pieces = scattered("scattered", **known)[-1:]
        if n < 2:
            pieces += scattered("stuck", **known)[-1:]
        produce(broker, topic, pieces)
        time.sleep(1)
    assert committed_everything(broker, topic, group)
    # due after every threshold of the scattered interaction's early stages
    last = sentinels(broker, topic, 3, time.time())
    records = wait_for(
        lambda: read_topic(broker, daemons[0].alerts_topic, idle=1.0),
        lambda got: {a["interactionId"] for a in alerts(got)} >= last,
        timeout=60,
    )
    for daemon in daemons:
        assert daemon.stop() == 0
    firing = [
        (a["interactionId"], a["rule"])
        for a in alerts(records)
        if a["status"] == "firing" and a["interactionId"] not in last
    ]
    assert firing == [("stuck", "previewing")]
