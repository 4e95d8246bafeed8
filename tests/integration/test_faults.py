"""Faults against the real broker: each test prints one line of figures it asserts on."""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections import Counter
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
from tests.integration.test_daemon import committed_everything, sentinels, snapshot

# long enough for a takeover (session timeout 10 s), or a restart on a busy machine, to
# happen before the stalls are due: a move recorded after its threshold is a stall
SLOW = {
    "STALLS_THRESHOLDS": "{ created = 25, previewing = 25, placed = 25, routed = 25 }",
    "KAFKA_SESSION_TIMEOUT_MS": "10000",
}


def group_of(
    n: int, broker: Broker, topic: str, tmp_path: Path, settings: dict[str, str]
) -> list[Daemon]:
    """``n`` daemons in one consumer group, each ready."""
    group = f"group-{uuid.uuid4().hex[:8]}"
    daemons = [
        Daemon(broker, topic, settings, group=group).start(tmp_path / f"daemon-{i}.log")
        for i in range(n)
    ]
    for daemon in daemons:
        daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    return daemons


def test_kill_one_of_three_instances(broker: Broker, tmp_path: Path) -> None:
    """After kill -9 of one instance, the others restore its state and report every stall."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=6)
    daemons = group_of(3, broker, topic, tmp_path, SLOW)
    now = time.time()
    stuck = [f"stuck-{n}" for n in range(30)]
    produce(broker, topic, [snapshot(i, created=now - 2, previewing=now - 1) for i in stuck])
    # every instance has applied, saved and committed what it owns
    assert committed_everything(broker, topic, daemons[0].group)
    assert daemons[1].stop(signal.SIGKILL) == -signal.SIGKILL
    reported = wait_for(
        lambda: read_topic(broker, daemons[0].alerts_topic, idle=1.0),
        lambda got: {a["interactionId"] for a in alerts(got)} >= set(stuck),
        timeout=90,
    )
    ids = Counter(a["alertId"] for a in alerts(reported) if a["status"] == "firing")
    interactions = {a["interactionId"] for a in alerts(reported)}
    print(
        f"\nkill -9: stalls expected {len(stuck)} reported {len(interactions)} "
        f"alert ids {len(ids)} duplicated {sum(ids.values()) - len(ids)}"
    )
    assert interactions == set(stuck)
    assert len(ids) == len(stuck)  # a repeat is only ever the same alertId
    for daemon in (daemons[0], daemons[2]):
        assert daemon.stop() == 0


def test_rolling_restart_loses_no_stall_and_raises_no_false_alarm(
    broker: Broker, tmp_path: Path
) -> None:
    """Restarting each of three instances in turn mid-stream: every stall once, no false one."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=6)
    daemons = group_of(3, broker, topic, tmp_path, SLOW)
    expected: set[str] = set()
    normal: set[str] = set()
    for turn, daemon in enumerate(daemons):
        now = time.time()
        stuck = [f"stuck-{turn}-{n}" for n in range(5)]
        fine = [f"fine-{turn}-{n}" for n in range(5)]
        produce(
            broker,
            topic,
            [snapshot(i, created=now - 2, previewing=now - 1) for i in stuck + fine],
        )
        expected |= set(stuck)
        normal |= set(fine)
        assert daemon.stop() == 0  # SIGTERM: commit and leave
        daemons[turn] = Daemon(broker, topic, SLOW, group=daemon.group).start(
            tmp_path / f"daemon-{turn}-again.log"
        )
        later = time.time()
        moved = min(now + 5, later)  # placed (then connected) before the threshold
        produce(  # the fine ones move on in time, by their own clocks
            broker,
            topic,
            [
                snapshot(i, created=now - 2, previewing=now - 1, placed=moved, connected=later)
                for i in fine
            ],
        )
    # due two seconds after the last stuck ones: a false alarm would come before them
    last = sentinels(broker, topic, 6, now + 1)
    got = wait_for(
        lambda: read_topic(broker, daemons[0].alerts_topic, idle=1.0),
        lambda got: {a["interactionId"] for a in alerts(got)} >= expected | last,
        timeout=90,
    )
    firing = [a for a in alerts(got) if a["status"] == "firing" and a["interactionId"] not in last]
    ids = Counter(a["alertId"] for a in firing)
    interactions = {a["interactionId"] for a in firing}
    print(
        f"\nrolling restart: stalls expected {len(expected)} "
        f"reported {len(interactions & expected)} false {len(interactions - expected)} "
        f"duplicated {sum(ids.values()) - len(ids)}"
    )
    assert interactions == expected
    assert len(ids) == len(expected)
    for daemon in daemons:
        assert daemon.stop() == 0


def test_flood_of_unique_ids_stays_within_the_cap(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """A flood of unique interactions keeps tracked state at the cap and counts evictions."""
    cap = 500
    daemon = Daemon(broker, topic, {"TRACKING_MAX_INTERACTIONS": str(cap)}).start(
        tmp_path / "daemon.log"
    )
    now = time.time()
    flood = 20_000
    produce(
        broker,
        topic,
        [snapshot(f"flood-{n}", mode="power", active=False, placed=now) for n in range(flood)],
    )
    assert committed_everything(broker, topic, daemon.group, timeout=120)
    tracked = sum(daemon.metric("dialer_interactions", {"stage": s}) or 0 for s in ("placed",))
    evicted = daemon.metric("dialer_interactions_removed_total", {"reason": "evicted"}) or 0
    rss = daemon.metric("process_resident_memory_bytes") or 0
    print(
        f"\nflood: produced {flood} tracked {tracked:.0f} (cap {cap}x3) "
        f"evicted {evicted:.0f} rss {rss / 1e6:.0f} MB"
    )
    assert tracked <= cap * 3
    assert tracked + evicted == flood
    assert daemon.stop() == 0


def test_poison_at_volume_is_dead_lettered_and_the_partition_moves(
    broker: Broker, tmp_path: Path
) -> None:
    """Fuzzed bytes, deep nesting, 10 MB values and wrong types all go to the dead letters."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=1, max_message_bytes=16_000_000)
    rng = random.Random(11)
    poison = [Sent(b"fuzz", rng.randbytes(rng.randrange(1, 2000))) for _ in range(300)]
    poison += [Sent(b"deep", b"[" * 200_000 + b"]" * 200_000) for _ in range(3)]
    poison += [
        Sent(b"deep-object", b'{"id": "d", "x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}")
    ]
    poison += [
        Sent(b"huge", b'{"id": "huge", "pad": "' + b"x" * 10_000_000 + b'"}') for _ in range(2)
    ]
    poison += [
        Sent(b"typed", json.dumps({"id": "t", "creationTime": n}).encode()) for n in range(200)
    ]
    now = time.time()
    after = snapshot("after-the-poison", created=now - 2, previewing=now - 1)
    produce(broker, topic, [*poison, after], max_request_size=16_000_000)
    daemon = Daemon(broker, topic, {"STALLS_THRESHOLDS": "{ previewing = 3 }"}).start(
        tmp_path / "daemon.log"
    )
    fired = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == "after-the-poison" for a in alerts(got)),
        timeout=60,
    )
    assert committed_everything(broker, topic, daemon.group)
    letters = read_topic(broker, daemon.dead_letter_topic, idle=2.0)
    reasons = Counter(r.headers["dlq.reason"].decode() for r in letters)
    invalid = daemon.metric("dialer_events_total", {"outcome": "invalid"})
    print(f"\npoison: produced {len(poison)} dead-lettered {len(letters)} {dict(reasons)}")
    assert daemon.stop() == 0
    assert len(letters) == invalid == len(poison)
    assert reasons["too_large"] == 2
    huge = [r for r in letters if r.key == b"huge"]
    assert all(r.headers["dlq.truncated"] == b"true" for r in huge)
    assert any(a["interactionId"] == "after-the-poison" for a in alerts(fired))
