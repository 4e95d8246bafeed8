"""The daemon against a real broker: alerts, dead letters, commits, restarts, clocks."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consumer.engine.model import WIRE_TIMES, iso
from tests.integration.harness import (
    Broker,
    Daemon,
    Got,
    Sent,
    alerts,
    create_topic,
    offsets,
    produce,
    read_topic,
    wait_for,
)
from tests.machine import tool

PHONE = "+15551234567"
THRESHOLDS = (
    "{ created = 3, previewing = 3, placed = 3, routed = 3, connected = 60, "
    "wrapped_up = 3, conversation_ended = 3 }"
)
FAST = {"STALLS_THRESHOLDS": THRESHOLDS, "KAFKA_MAX_RECORD_BYTES": "10000"}


def snapshot(
    iid: str,
    *,
    active: bool | None = True,
    mode: str = "PREVIEW",
    at: dict[str, float] | None = None,
    **times: float,
) -> Sent:
    """A camelCase snapshot record keyed by its id, stamped with its newest time.

    Stage times come as keywords, or as ``at`` when they are data.
    """
    times = {**(at or {}), **times}
    body: dict[str, Any] = {
        "id": iid,
        "campaign": {"id": "camp-1", "name": "Winter"},
        "agent": {"id": "agent-7", "name": "Agent Seven"},
        "contact": {"id": "contact-1", "name": "Jane Customer"},
        "destinationAddress": PHONE,
        "callerAddress": PHONE,
        "callerName": "Jane Customer",
        "dialingMode": mode,
        "activePreviewCall": active,
    }
    for name, moment in times.items():
        if name == "ended":
            body["conversation"] = {"id": "conv-" + iid, "endTime": iso(moment)}
        else:
            body[WIRE_TIMES[name]] = iso(moment)
    return Sent(iid.encode(), json.dumps(body).encode(), timestamp=max(times.values()))


def sentinels(broker: Broker, topic: str, partitions: int, popped: float) -> set[str]:
    """A preview popped at ``popped`` on each partition; their ids.

    Alerts of one partition are delivered in the order they fire, so once every
    sentinel's alert is in, every alert due before them is in too: a false alarm would
    have shown, with no sleeping and hoping.
    """
    ids = [f"sentinel-{n}" for n in range(partitions)]
    records = [snapshot(i, created=popped, previewing=popped) for i in ids]
    produce(broker, topic, [dataclasses.replace(r, partition=n) for n, r in enumerate(records)])
    return set(ids)


def alerts_until(broker: Broker, topic: str, wanted: int, timeout: float = 40) -> list[Got]:
    """The alerts topic, once it holds at least ``wanted`` records."""
    return wait_for(
        lambda: read_topic(broker, topic, idle=1.0), lambda g: len(g) >= wanted, timeout
    )


def by_interaction(records: list[Got]) -> dict[str, list[tuple[str, str, str]]]:
    """(status, rule, alertId) of each alert, grouped by interaction."""
    grouped: dict[str, list[tuple[str, str, str]]] = {}
    for a in alerts(records):
        grouped.setdefault(a["interactionId"], []).append((a["status"], a["rule"], a["alertId"]))
    return grouped


def committed_everything(broker: Broker, topic: str, group: str, timeout: float = 20) -> bool:
    """Whether the group's committed offsets reach the end of every partition."""
    deadline = time.monotonic() + timeout
    while True:
        committed, ends = offsets(broker, topic, group)
        if all(committed.get(p, 0) == end for p, end in ends.items()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


@pytest.mark.kafka4
def test_scenario_alerts_dead_letters_commits_and_metrics(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Each stall kind fires once, resolves when it moves on; junk is dead-lettered; all commit."""
    now = time.time()
    normal = [
        snapshot("normal", created=now - 10, previewing=now - 9),
        snapshot("normal", created=now - 10, previewing=now - 9, placed=now - 8, routed=now - 7),
        # each move is recorded when it happens: records are the monitor's clock, and a
        # routed call recorded connected only at wrap-up would be a stall seen late
        snapshot("normal", created=now - 10, placed=now - 8, routed=now - 7, connected=now - 6),
        snapshot(
            "normal",
            active=False,
            created=now - 10,
            placed=now - 8,
            connected=now - 6,
            wrapped_up=now - 2,
        ),
    ]
    out_of_order = [
        snapshot("ooo", active=False, created=now - 9, placed=now - 8, wrapped_up=now - 2),
        snapshot("ooo", created=now - 9, placed=now - 8),
        snapshot("ooo", created=now - 9),
    ]
    stalls = [
        snapshot("not-popped", active=None, created=now - 1),
        snapshot("not-placed", created=now - 2, previewing=now - 1),
        snapshot("not-routed", placed=now - 1),
        snapshot("not-connected", placed=now - 2, routed=now - 1),
        snapshot("open-after-wrapup", placed=now - 3, connected=now - 2, wrapped_up=now - 1),
        snapshot("open-after-end", placed=now - 3, connected=now - 2, ended=now - 1),
        snapshot("moves-on", previewing=now - 1),
        snapshot("tomb-stalled", previewing=now - 1),
    ]
    junk = [
        Sent(b"j1", b"not json"),
        Sent(b"j2", b"\xff\xfe{}"),
        Sent(b"j3", b"[1, 2]"),
        Sent(b"j4", b'{"id": 5}'),
        Sent(b"j5", b'{"id": "big", "pad": "' + b"x" * 20_000 + b'"}'),
    ]
    quiet_tomb = [snapshot("tomb-quiet", previewing=now - 1), Sent(b"tomb-quiet", None)]
    # normal twice: its second copy echoes an ended interaction; one stall twice: a duplicate
    first = normal + normal + out_of_order + stalls + stalls[1:2] + junk + quiet_tomb
    produce(broker, topic, first)
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    fired = alerts_until(broker, daemon.alerts_topic, wanted=8)
    assert {i: [(s, r) for s, r, _ in a] for i, a in by_interaction(fired).items()} == {
        "not-popped": [("firing", "created")],
        "not-placed": [("firing", "previewing")],
        "not-routed": [("firing", "placed")],
        "not-connected": [("firing", "routed")],
        "open-after-wrapup": [("firing", "wrapped_up")],
        "open-after-end": [("firing", "conversation_ended")],
        "moves-on": [("firing", "previewing")],
        "tomb-stalled": [("firing", "previewing")],
    }
    later = time.time()
    produce(
        broker,
        topic,
        [
            snapshot("moves-on", previewing=now - 1, placed=later, connected=later),
            Sent(b"tomb-stalled", None),
        ],
    )
    final = by_interaction(alerts_until(broker, daemon.alerts_topic, wanted=10))
    for iid in ("moves-on", "tomb-stalled"):
        (firing_status, _, firing_id), (resolved_status, _, resolved_id) = final[iid]
        assert (firing_status, resolved_status) == ("firing", "resolved")
        assert firing_id == resolved_id
    resolved = [
        a for a in alerts(read_topic(broker, daemon.alerts_topic)) if a["status"] == "resolved"
    ]
    assert {a["interactionId"]: a["resolution"] for a in resolved} == {
        "moves-on": "moved_on",
        "tomb-stalled": "tombstone",
    }

    letters = read_topic(broker, daemon.dead_letter_topic)
    reasons = {r.key: r.headers["dlq.reason"].decode() for r in letters}
    assert reasons == {
        b"j1": "not_json",
        b"j2": "not_utf8",
        b"j3": "not_object",
        b"j4": "invalid_field",
        b"j5": "too_large",
    }
    for letter in letters:
        original = next(s for s in junk if s.key == letter.key)
        assert letter.value == original.value  # the original bytes, untouched
        assert letter.headers["dlq.source.topic"].decode() == topic
        assert int(letter.headers["dlq.source.offset"]) >= 0
    assert b"$.id" in next(r for r in letters if r.key == b"j4").headers["dlq.error"]

    assert committed_everything(broker, topic, daemon.group)
    assert daemon.metric("dialer_dead_letters_total", {"reason": "not_json"}) == 1
    assert daemon.metric("dialer_events_total", {"outcome": "invalid"}) == 5
    assert daemon.metric("dialer_events_total", {"outcome": "duplicate"}) == 1
    # the second copy of "normal" (4 records) and the 2 older "ooo" snapshots echo an end
    assert daemon.metric("dialer_events_total", {"outcome": "ended"}) == 6
    assert daemon.metric("dialer_stall_alerts_total", {"stage": "previewing"}) == 3
    assert daemon.metric("dialer_interactions_removed_total", {"reason": "tombstone"}) == 2
    lag = [
        daemon.metric("dialer_consumer_lag", {"topic": topic, "partition": str(p)})
        for p in range(3)
    ]
    assert lag == [0, 0, 0]
    status, body = daemon.get("/stalled")
    stalled = {a["interactionId"] for a in json.loads(body)["stalled"]}
    assert status == 200
    assert stalled == {
        "not-popped",
        "not-placed",
        "not-routed",
        "not-connected",
        "open-after-wrapup",
        "open-after-end",
    }
    assert daemon.get("/readyz")[0] == 200
    assert daemon.stop() == 0
    everything = daemon.logs() + body.decode() + str(read_topic(broker, daemon.alerts_topic))
    assert PHONE not in everything
    assert "Jane Customer" not in everything


@pytest.mark.kafka4
def test_restart_mid_stream_loses_nothing(broker: Broker, topic: str, tmp_path: Path) -> None:
    """SIGTERM exits 0 with offsets committed; a restart reads on from there; no alert is lost."""
    now = time.time()
    first = [snapshot(f"a-{n}", previewing=now - 1) for n in range(5)]
    produce(broker, topic, first)
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "first.log")
    alerts_until(broker, daemon.alerts_topic, wanted=5)
    assert daemon.metric("dialer_events_total", {"outcome": "applied"}) == 5
    assert daemon.stop() == 0
    assert committed_everything(broker, topic, daemon.group, timeout=1)

    later = time.time()
    second = [snapshot(f"b-{n}", previewing=later - 1) for n in range(5)]
    produce(broker, topic, second)
    again = Daemon(broker, topic, FAST, group=daemon.group).start(tmp_path / "second.log")
    records = alerts_until(broker, again.alerts_topic, wanted=10)
    # the restart read only what the first run had not committed
    assert again.metric("dialer_events_total", {"outcome": "applied"}) == 5
    assert again.stop() == 0
    fired = Counter(a["interactionId"] for a in alerts(records) if a["status"] == "firing")
    assert fired == Counter({f"{p}-{n}": 1 for p in "ab" for n in range(5)})
    assert committed_everything(broker, topic, daemon.group, timeout=1)


@pytest.mark.kafka4
def test_backlog_after_downtime_raises_no_false_alarm(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Old flows that completed in time are judged on event time: only the real stall fires."""
    then = time.time() - 600
    history = []
    for n in range(10):
        start = then + n * 10
        history += [
            snapshot(f"old-{n}", created=start, previewing=start + 1),
            snapshot(f"old-{n}", created=start, previewing=start + 1, placed=start + 2),
            snapshot(
                f"old-{n}",
                created=start,
                previewing=start + 1,
                placed=start + 2,
                connected=start + 3,
            ),
            snapshot(
                f"old-{n}", active=False, created=start, placed=start + 2, wrapped_up=start + 4
            ),
        ]
    history.append(snapshot("really-stuck", created=then, previewing=then + 1))
    produce(broker, topic, history)
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    assert committed_everything(broker, topic, daemon.group)
    last = sentinels(broker, topic, 3, time.time())
    records = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: {a["interactionId"] for a in alerts(got)} >= last,
        timeout=30,
    )
    assert daemon.stop() == 0
    assert [
        (a["interactionId"], a["status"]) for a in alerts(records) if a["interactionId"] not in last
    ] == [("really-stuck", "firing")]


def test_quiet_topic_raises_stall_on_time(broker: Broker, topic: str, tmp_path: Path) -> None:
    """With no further records, a stall fires on the wall clock within a second of its due time."""
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=30)
    popped = time.time()
    produce(broker, topic, [snapshot("lonely", created=popped, previewing=popped)])
    (alert,) = alerts(alerts_until(broker, daemon.alerts_topic, wanted=1, timeout=20))
    assert daemon.stop() == 0
    assert alert["rule"] == "previewing"
    assert alert["stalledForSeconds"] - alert["thresholdSeconds"] < 1.0


def test_kcat_produced_compressed_records_are_consumed(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Records produced by kcat, an independent client, with each codec, are all tracked."""
    kcat = tool("kcat")
    now = time.time()
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        sent = snapshot(f"kcat-{codec}", created=now - 2, previewing=now - 1)
        assert sent.value is not None
        subprocess.run(
            [kcat, "-b", broker.bootstrap, "-t", topic, "-P", "-z", codec, "-K", "\t"],
            input=f"kcat-{codec}\t".encode() + sent.value + b"\n",
            check=True,
            timeout=30,
        )
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    records = alerts_until(broker, daemon.alerts_topic, wanted=4)
    assert daemon.metric("dialer_events_total", {"outcome": "applied"}) == 4
    assert daemon.stop() == 0
    assert {a["interactionId"] for a in alerts(records)} == {
        f"kcat-{codec}" for codec in ("gzip", "snappy", "lz4", "zstd")
    }


POISON = {
    # a date-time whose UTC value falls in year 0, and one in year 10000
    "year-zero": b'{"id":"year-zero","dialingMode":"preview",'
    b'"creationTime":"0001-01-01T00:00:00+05:30"}',
    "year-10000": b'{"id":"year-10000","dialingMode":"preview",'
    b'"creationTime":"9999-12-31T23:59:59-05:00"}',
    "deep": b"[" * 1000 + b"]" * 1000,
    "deep-field": b'{"id":"deep-field","skills":' + b"[" * 1000 + b"]" * 1000 + b"}",
}


def test_poison_from_kcat_never_silences_the_monitor(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Poison produced by kcat is dead-lettered; the daemon runs on, restarts, and alerts."""
    kcat = tool("kcat")
    now = time.time()
    good = snapshot("good", created=now - 2, previewing=now - 1)
    assert good.value is not None
    lines = [f"{key}\t".encode() + value for key, value in POISON.items()]
    lines.append(b"\t")  # with -Z: a tombstone without a key, both null in one dead letter
    lines.append(b"good\t" + good.value)
    subprocess.run(
        [kcat, "-b", broker.bootstrap, "-t", topic, "-P", "-p", "0", "-K", "\t", "-Z"],
        input=b"\n".join(lines) + b"\n",
        check=True,
        timeout=30,
    )
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    records = alerts_until(broker, daemon.alerts_topic, wanted=1)
    assert committed_everything(broker, topic, daemon.group)
    assert daemon.stop() == 0
    again = Daemon(broker, topic, FAST, group=daemon.group).start(tmp_path / "again.log")
    again.wait_http("/readyz", lambda status: status == 200, timeout=60)  # no crash loop
    assert again.stop() == 0
    letters = {r.key: r.headers["dlq.reason"] for r in read_topic(broker, daemon.dead_letter_topic)}
    assert [a["interactionId"] for a in alerts(records)] == ["good"]
    assert letters == {
        b"year-zero": b"invalid_field",
        b"year-10000": b"invalid_field",
        b"deep": b"not_object",  # an array is told apart before its depth matters
        b"deep-field": b"too_deep",
        None: b"missing_id",
    }


def test_a_state_topic_sized_for_another_topic_stops_the_start(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """A changelog whose partitions do not match the input's: exit 2, the setting named."""
    daemon = Daemon(broker, topic, FAST)
    create_topic(broker, f"{daemon.group}.state", partitions=1)  # the input has 3
    code = daemon.run(tmp_path / "daemon.log")
    output = daemon.logs()
    assert code == 2, output[-3000:]
    assert "kafka.state_topic" in output
    assert "Traceback" not in output
