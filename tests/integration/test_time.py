"""Time on the real broker: a skewed producer clock, and a source that falls silent.

The monitor's own outage (the broker away) is in ``test_broker_faults.py``, on a broker
of its own; a topic without heartbeats is ``test_daemon.py``'s quiet topic.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from consumer.engine.model import iso
from consumer.formats import heartbeat
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
from tests.integration.test_daemon import FAST, snapshot

TEN_YEARS = 10 * 365 * 86400.0


def one_partition(broker: Broker) -> str:
    """A new one-partition topic: every record and alert of a test in one order."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=1)
    return topic


def test_one_record_ten_years_ahead_fires_nothing(broker: Broker, tmp_path: Path) -> None:
    """A record stamped ten years ahead amid live traffic: counted, and stalls stay on time."""
    topic = one_partition(broker)
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    now = time.time()
    skewed = snapshot("skewed", mode="power", active=False, created=now)
    produce(
        broker,
        topic,
        [
            snapshot("watched", created=now, previewing=now),
            dataclasses.replace(skewed, timestamp=now + TEN_YEARS),
            snapshot("moves-on", created=now, previewing=now),
        ],
    )
    time.sleep(1)  # live traffic after the skewed record: a move made in time
    moved = time.time()
    produce(broker, topic, [snapshot("moves-on", previewing=now, placed=moved, connected=moved)])
    later = time.time()
    produce(broker, topic, [snapshot("later", created=later, previewing=later)])
    got = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda g: {a["interactionId"] for a in alerts(g)} >= {"watched", "later"},
        timeout=30,
    )
    future = daemon.metric("dialer_future_timestamps_total", {"topic": topic, "partition": "0"})
    assert daemon.stop() == 0
    fired = {a["interactionId"]: a for a in alerts(got) if a["status"] == "firing"}
    late = {i: a["stalledForSeconds"] - a["thresholdSeconds"] for i, a in fired.items()}
    print(f"\nten years ahead: counted {future}, alerts {sorted(fired)}, late by {late}")
    assert set(fired) == {"watched", "later"}  # no false alarm; "later" fired after the rest
    assert all(0 <= seconds < 2 for seconds in late.values())  # on time, not at once
    assert future == 1


def heartbeats(broker: Broker, topic: str, stop: threading.Event, every: float = 1.0) -> None:
    """Send a heartbeat for now to partition 0 every ``every`` seconds until ``stop``."""
    while not stop.is_set():
        now = time.time()
        beat = Sent(
            b"producer",
            heartbeat.encode("producer", now, every),
            timestamp=now,
            headers=((heartbeat.HEADER, b"producer"),),
        )
        produce(broker, topic, [beat])
        stop.wait(every)


def test_a_silent_producer_is_one_alert_and_real_stalls_fire_after_it(
    broker: Broker, tmp_path: Path
) -> None:
    """Producer silent 40 s: no stall for what is in flight, one source_silent, then back."""
    topic = one_partition(broker)
    settings = {
        "STALLS_THRESHOLDS": "{ previewing = 15, placed = 60 }",
        "RUNTIME_SOURCE_GRACE_SECONDS": "5",
        "RUNTIME_SOURCE_SILENT_SECONDS": "15",
    }
    daemon = Daemon(broker, topic, settings).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    stop = threading.Event()
    beating = threading.Thread(target=heartbeats, args=(broker, topic, stop), daemon=True)
    beating.start()
    t0 = time.time()
    in_flight = [f"in-flight-{n}" for n in range(5)]
    produce(broker, topic, [snapshot(i, created=t0, previewing=t0) for i in [*in_flight, "stuck"]])
    time.sleep(2)
    stop.set()  # the producer dies: no records, no heartbeats, for 40 s (2.7 thresholds)
    beating.join()
    silent = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: any(a.get("rule") == "source_silent" for a in alerts(got)),
        timeout=60,
    )
    assert [a["status"] for a in alerts(silent)] == ["firing"]  # nothing but the silence
    time.sleep(max(0.0, t0 + 42 - time.time()))
    back = time.time()
    # it comes back and publishes what it saw meanwhile: the previews in flight were placed
    moved = [snapshot(i, previewing=t0, placed=t0 + 10, connected=t0 + 12) for i in in_flight]
    produce(broker, topic, [dataclasses.replace(r, timestamp=back) for r in moved])
    stop.clear()
    beating = threading.Thread(target=heartbeats, args=(broker, topic, stop), daemon=True)
    beating.start()
    try:
        got = wait_for(
            lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
            lambda got: (
                {(a.get("rule"), a["status"]) for a in alerts(got)}
                >= {("source_silent", "resolved"), ("previewing", "firing")}
            ),
            timeout=60,
        )
    finally:
        stop.set()
        beating.join()
    assert daemon.stop() == 0
    records = alerts(got)
    sources = [(a["rule"], a["status"]) for a in records if a["rule"] == "source_silent"]
    stalls = [(a["interactionId"], a["status"]) for a in records if a["rule"] != "source_silent"]
    print(f"\nsilent producer: source alerts {sources}, stall alerts {stalls}")
    assert sources == [("source_silent", "firing"), ("source_silent", "resolved")]
    assert stalls == [("stuck", "firing")]
    (stuck,) = [a for a in records if a.get("interactionId") == "stuck"]
    assert stuck["observedAt"] >= iso(back - 1)  # after the silence (a second for two clocks)


def beating(broker: Broker, topic: str, stop: threading.Event, partitions: int) -> None:
    """Send a heartbeat for now to every partition each second until ``stop``."""
    while not stop.is_set():
        now = time.time()
        beats = [
            Sent(
                b"producer",
                heartbeat.encode("producer", now, 1.0),
                timestamp=now,
                partition=p,
                headers=((heartbeat.HEADER, b"producer"),),
            )
            for p in range(partitions)
        ]
        produce(broker, topic, beats)
        stop.wait(1.0)


DEAD_FEED = {
    "STALLS_THRESHOLDS": "{ previewing = 8, placed = 60 }",
    "RUNTIME_SOURCE_GRACE_SECONDS": "4",
    "RUNTIME_SOURCE_SILENT_SECONDS": "10",
}
IN_FLIGHT = [f"in-flight-{n}" for n in range(9)]


def feed_dies(broker: Broker, topic: str) -> float:
    """A beating producer publishes 10 previews (9 to be placed later, "stuck"), then dies."""
    stop = threading.Event()
    beats = threading.Thread(target=beating, args=(broker, topic, stop, 3), daemon=True)
    beats.start()
    time.sleep(2)
    t0 = time.time()
    produce(broker, topic, [snapshot(i, created=t0, previewing=t0) for i in [*IN_FLIGHT, "stuck"]])
    time.sleep(1)
    stop.set()  # no records, no heartbeats from here on
    beats.join()
    return t0


def feed_returns(
    broker: Broker, topic: str, alerts_topic: str, t0: float
) -> tuple[float, list[dict[str, Any]], list[tuple[str, str]]]:
    """The producer is back with the placements it missed and beats again.

    Returns when it came back, the source alerts and the stall alerts (id, status) once the
    silence resolved and the stuck preview fired.
    """
    back = time.time()
    moved = [snapshot(i, previewing=t0, placed=t0 + 3, connected=t0 + 4) for i in IN_FLIGHT]
    produce(broker, topic, [dataclasses.replace(r, timestamp=back) for r in moved])
    stop = threading.Event()
    beats = threading.Thread(target=beating, args=(broker, topic, stop, 3), daemon=True)
    beats.start()
    try:
        got = wait_for(
            lambda: read_topic(broker, alerts_topic, idle=1.0),
            lambda got: (
                {(a.get("rule"), a["status"]) for a in alerts(got)}
                >= {("source_silent", "resolved"), ("previewing", "firing")}
            ),
            timeout=60,
        )
    finally:
        stop.set()
        beats.join()
    records = alerts(got)
    sources = [a for a in records if a["rule"] == "source_silent"]
    stalls = [(a["interactionId"], a["status"]) for a in records if a["rule"] != "source_silent"]
    print(f"\nsource alerts {[(a['status'], a['alertId']) for a in sources]}, stalls {stalls}")
    return back, sources, stalls


def test_a_restart_during_a_dead_feed_keeps_its_silence_and_fires_no_stall(
    broker: Broker, tmp_path: Path
) -> None:
    """Issue 27 case 1: producer dies, daemon restarted meanwhile, producer back: one silence."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=3)
    first = Daemon(broker, topic, DEAD_FEED).start(tmp_path / "first.log")
    first.wait_http("/readyz", lambda status: status == 200, timeout=60)
    t0 = feed_dies(broker, topic)
    silent = wait_for(
        lambda: read_topic(broker, first.alerts_topic, idle=1.0),
        lambda got: any(a.get("rule") == "source_silent" for a in alerts(got)),
        timeout=60,
    )
    assert [a["status"] for a in alerts(silent)] == ["firing"]
    assert first.stop() == 0  # restarted while the feed is dead
    second = Daemon(broker, topic, DEAD_FEED, group=first.group).start(tmp_path / "second.log")
    second.wait_http("/readyz", lambda status: status == 200, timeout=60)
    time.sleep(max(0.0, t0 + 30 - time.time()))  # all ten due (t0 + 8) long before
    back, sources, stalls = feed_returns(broker, topic, second.alerts_topic, t0)
    assert second.stop() == 0
    assert [a["status"] for a in sources] == ["firing", "resolved"]
    assert len({a["alertId"] for a in sources}) == 1
    assert sources[-1]["observedAt"] <= iso(back + 5)  # within a few seconds of the return
    assert stalls == [("stuck", "firing")]
    records = alerts(read_topic(broker, second.alerts_topic, idle=1.0))
    (stuck,) = [a for a in records if a.get("interactionId") == "stuck"]
    assert stuck["observedAt"] >= iso(back - 1)  # after the return (a second for two clocks)


def test_two_instances_one_killed_for_good_during_a_dead_feed(
    broker: Broker, tmp_path: Path
) -> None:
    """Issue 27 case 1, two instances: one dies in the outage; the other takes over quietly."""
    topic = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, partitions=3)
    settings = {**DEAD_FEED, "KAFKA_STATE_SAVE_SECONDS": "1"}
    kept = Daemon(broker, topic, settings).start(tmp_path / "kept.log")
    killed = Daemon(broker, topic, settings, group=kept.group).start(tmp_path / "killed.log")
    for daemon in (kept, killed):
        daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    t0 = feed_dies(broker, topic)
    wait_for(
        lambda: read_topic(broker, kept.alerts_topic, idle=1.0),
        lambda got: len([a for a in alerts(got) if a.get("rule") == "source_silent"]) >= 2,
        timeout=60,
    )  # each instance names the silence of its partitions
    time.sleep(2)  # saved with the instances' state
    killed.stop(signal.SIGKILL)  # for good: its partitions move once its session expires
    time.sleep(max(0.0, t0 + 35 - time.time()))
    back, sources, stalls = feed_returns(broker, topic, kept.alerts_topic, t0)
    assert kept.stop() == 0
    assert len({a["alertId"] for a in sources}) == 1
    assert sources[-1]["status"] == "resolved"
    assert sources[-1]["observedAt"] <= iso(back + 5)
    assert stalls == [("stuck", "firing")]
