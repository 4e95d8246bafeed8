"""The daemon's batch step and replay run one pipeline: the same records, the same outcome."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.commands.replay import Replay
from consumer.daemon.delivery import Delivery
from consumer.daemon.outputs import Outputs
from consumer.daemon.policy import batch_step, stall_policy
from consumer.daemon.step import Facts
from consumer.engine.observations import Observations
from consumer.formats.alerts import Alert, AnyAlert
from consumer.settings.schema import Settings
from consumer.simulator.traffic import Simulator, TrafficSettings, demo_thresholds, kcat_lines
from consumer.testing.fakes import FakeRecord
from consumer.testing.rig import T0, TOPIC, preview, settings

SPEED = 10.0
MAX_BYTES = 4096
YEAR = 365 * 86400.0
INVALID = re.compile(r"^dump:(\d+): invalid record \((\w+)\): (.*)$")
# (offset, reason, detail) of each invalid record; alerts in the order they went out
Outcome = tuple[list[Alert], list[tuple[int, str, str]], int, set[str]]


def run_settings() -> Settings:
    """Compressed thresholds for compressed traffic, and a size limit the edge cases cross."""
    return settings(
        kafka={"max_record_bytes": MAX_BYTES},
        stalls={"thresholds": demo_thresholds(SPEED)},
    )


def envelope(ts_ms: float, key: str | None, payload: bytes | None) -> dict[str, Any]:
    """A ``kcat -J`` envelope (its offset set later), as :func:`kcat_lines` writes them."""
    return {
        "topic": TOPIC,
        "partition": 0,
        "offset": 0,
        "tstype": "create",
        "ts": ts_ms,
        "key": key,
        "payload": None if payload is None else payload.decode(),
    }


def traffic() -> list[dict[str, Any]]:
    """Simulated traffic (malformed records among it) with the edge cases in its middle."""
    sim = Simulator(TrafficSettings(rate=3, speed=SPEED, seed=11, malformed_share=0.05), T0)
    records = sim.due(T0 + 150) + sim.due(float("inf"), start_new=False)
    lines = [json.loads(line) for line in kcat_lines(records, TOPIC)]
    middle = len(lines) // 2
    at = lines[middle]["ts"] / 1000.0
    offset = at - T0  # preview() takes times as offsets from T0
    in_flight = lines[middle - 1]["key"]
    padded = preview("oversize", previewing=offset) + b" " * MAX_BYTES
    edge_cases = [
        envelope(at * 1000, "oversize", padded),
        envelope(at * 1000, "ahead", preview("ahead", previewing=offset + 3600)),
        envelope((at + YEAR) * 1000, "future", preview("future", previewing=offset)),
        envelope(at * 1000, in_flight, None),  # a tombstone
        envelope(-1, "unstamped", preview("unstamped", previewing=offset + 30)),
        envelope((at + 7200) * 1000, "junk", b"not json, and two hours late"),
    ]
    lines[middle:middle] = edge_cases
    for number, line in enumerate(lines):
        line["offset"] = number
    return lines


def through_step(lines: list[dict[str, Any]], wall: float) -> Outcome:
    """The records in batches through the daemon's step: one partition, never caught up."""
    step = batch_step(
        run_settings(), stall_policy(run_settings()), Observations(), persist_state=False
    )
    tp = (TOPIC, 0)
    step.assign(tp, forward=False, restoring=False, now=0.0, wall=wall)
    records = [
        FakeRecord(
            TOPIC,
            0,
            line["offset"],
            int(line["ts"]),
            None if line["key"] is None else line["key"].encode(),
            None if line["payload"] is None else line["payload"].encode(),
        )
        for line in lines
    ]
    behind = Facts(lambda tp: None, lambda tp: None, False)
    alerts: list[AnyAlert] = []
    letters: list[tuple[int, str, str]] = []
    future = 0
    for start in range(0, len(records), 50):
        out: Outputs = step.step({tp: records[start : start + 50]}, behind, wall, float(start))
        alerts += Delivery.formatted(out.events)
        letters += [(r.offset, i.reason, i.detail) for r, i in out.dead_letters]
        future += sum(out.future.values())
    assert all(isinstance(a, Alert) for a in alerts)
    kept = [a for a in alerts if isinstance(a, Alert)]
    return kept, letters, future, set(step.partitions[tp].tracker.states)


def through_replay(lines: list[dict[str, Any]], wall: float) -> Outcome:
    """The same records as ``kcat -J`` lines through replay."""
    alerts: list[Alert] = []
    reports: list[str] = []
    replay = Replay(
        run_settings(), CollectorRegistry(), alerts.append, reports.append, wall=lambda: wall
    )
    replay.read("dump", [json.dumps(line).encode() for line in lines])
    letters = []
    for report in reports:
        invalid = INVALID.match(report)
        if invalid is not None:
            letters.append((int(invalid[1]) - 1, invalid[2], invalid[3]))
    return alerts, letters, replay.future, set(replay.tracker.states)


def test_the_step_and_replay_give_the_same_alerts_and_invalid_records() -> None:
    """Simulated traffic and edge cases: the same alerts, invalid records, future, state."""
    lines = traffic()
    wall = lines[-1]["ts"] / 1000.0 + 86400  # a day on: only the deliberate ones are ahead
    daemon = through_step(lines, wall)
    replayed = through_replay(lines, wall)
    alerts, letters, future, tracked = daemon
    assert len(alerts) > 20  # the traffic stalls: something to compare
    assert {"too_large", "not_json"} <= {reason for _, reason, _ in letters}
    assert future == 2  # the timestamp from the future, the snapshot ahead of the clock
    assert {"ahead", "future", "unstamped"} <= tracked
    assert [(a.interaction_id, a.rule, a.status) for a in replayed[0]] == [
        (a.interaction_id, a.rule, a.status) for a in alerts
    ]
    assert replayed == daemon
