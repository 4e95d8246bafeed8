"""A poisoned record in the compacted state topic, on a real broker: skipped, not fatal.

Compaction keeps a bad record, so every owner of its partition meets it on every restore.
Before, a value with an ``inf`` time or one nested too deep killed the restore task without
a word: the partition stayed paused and ``/readyz`` said "restoring" for ever.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tests.integration.harness import Broker, Daemon, Sent, alerts, produce, read_topic
from tests.integration.test_daemon import FAST, alerts_until, snapshot
from tests.unit.formats.test_changelog import poisoned, too_deep


def test_poisoned_state_records_are_skipped_and_every_partition_restores(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """inf, NaN and too-deep records on each state partition: skipped, logged with offsets."""
    now = time.time()
    stuck = [snapshot(f"stuck-{n}", previewing=now - 1) for n in range(6)]
    produce(broker, topic, stuck)
    first = Daemon(broker, topic, FAST).start(tmp_path / "first.log")
    alerts_until(broker, first.alerts_topic, wanted=6)
    assert first.stop() == 0

    state_topic = f"{first.group}.state"
    saved = read_topic(broker, state_topic, idle=1.0)
    good = next(r.value for r in saved if r.value is not None)
    partitions = sorted({r.partition for r in saved})
    bad = {
        "inf": poisoned(good, previewing=math.inf),
        "nan": poisoned(good, seen=math.nan),
        "deep": too_deep(),
    }
    produce(
        broker,
        state_topic,
        [
            Sent(f"poison-{kind}-{p}".encode(), value, partition=p)
            for p in partitions
            for kind, value in bad.items()
        ],
    )
    poison = {
        (r.partition, r.offset)
        for r in read_topic(broker, state_topic, idle=1.0)
        if (r.key or b"").startswith(b"poison-")
    }

    again = Daemon(broker, topic, FAST, group=first.group).start(tmp_path / "again.log")
    again.wait_http("/readyz", lambda status: status == 200, timeout=30)
    later = time.time()
    produce(broker, topic, [snapshot("after", previewing=later - 1)])
    records = alerts_until(broker, again.alerts_topic, wanted=7)
    _, body = again.get("/stalled")
    skipped = {
        reason: again.metric("dialer_state_records_skipped_total", {"reason": reason})
        for reason in ("not_finite", "too_deep")
    }
    assert again.stop() == 0

    assert {a["interactionId"] for a in alerts(records)} == {
        *(f"stuck-{n}" for n in range(6)),
        "after",
    }
    assert {a["interactionId"] for a in json.loads(body)["stalled"]} >= {
        f"stuck-{n}" for n in range(6)
    }
    assert skipped == {"not_finite": 2 * len(partitions), "too_deep": len(partitions)}
    logged = {
        (e["partition"], e["offset"])
        for e in again.log_events()
        if e["event"] == "state_record_skipped"
    }
    assert logged == poison
