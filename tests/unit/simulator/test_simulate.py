"""The traffic simulator: deterministic, decodable, and its stalls are the engine's stalls."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from consumer.engine.limits import Limits
from consumer.engine.model import Invalid, decode, decode_record
from consumer.engine.observations import Observations
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.simulator.traffic import (
    STALL_RULES,
    Simulated,
    Simulator,
    TrafficSettings,
    kcat_lines,
)

START = 1_800_000_000.0


def minute_of_traffic(seed: int = 7) -> tuple[Simulator, list[tuple[float, Simulated]]]:
    """One simulated minute at 30 interactions/s, then everything scripted drains."""
    sim = Simulator(TrafficSettings(rate=30, seed=seed), start=START)
    return sim, sim.due(START + 60) + sim.due(float("inf"), start_new=False)


def test_same_seed_same_traffic() -> None:
    """A seed fixes the traffic byte for byte; another seed changes it."""
    assert minute_of_traffic(1)[1] == minute_of_traffic(1)[1]
    assert minute_of_traffic(1)[1] != minute_of_traffic(2)[1]


def test_records_come_in_time_order_and_decode() -> None:
    """Records are due in order; all but the malformed ones decode to snapshots."""
    _, records = minute_of_traffic()
    moments = [moment for moment, _ in records]
    assert moments == sorted(moments)
    for _, record in records:
        decoded = decode_record(record.key, record.value)
        assert isinstance(decoded, Invalid) == (record.kind == "malformed"), record
    kinds = Counter(record.kind for _, record in records)
    assert {"normal", "duplicate", "out_of_order", "tombstone", "malformed"} <= set(kinds)


def test_every_injected_stall_is_caught_by_its_rule_and_nothing_else_fires() -> None:
    """Run through the real engine, stalls per rule equal the stalls injected per kind."""
    sim, records = minute_of_traffic()
    tracker = Tracker(StallPolicy(), Limits(), Observations())
    fired: Counter[str] = Counter()
    seen: set[tuple[str, str, float]] = set()
    last = START
    for moment, record in records:
        item = decode_record(record.key, record.value)
        if isinstance(item, Invalid):
            continue
        last = moment
        for event in tracker.ingest(item, moment):
            key = (event.interaction_id, event.stall.rule, event.stall.since)
            if event.status == "firing" and key not in seen:
                seen.add(key)
                fired[event.stall.rule] += 1
    for event in tracker.tick(last + 400):  # past every threshold the stall kinds use
        fired[event.stall.rule] += event.status == "firing"
    expected = Counter({STALL_RULES[kind]: n for kind, n in sim.stalls.items()})
    assert sum(expected.values()) > 30
    assert fired == expected


def test_speed_compresses_time() -> None:
    """At speed 10 one interaction's steps come ten times closer together."""

    def gaps(speed: float) -> list[float]:
        one_call = TrafficSettings(
            rate=1e-9,  # one interaction, and nothing mixed in
            speed=speed,
            seed=5,
            malformed_share=0,
            duplicate_share=0,
            out_of_order_share=0,
            tombstone_share=0,
        )
        sim = Simulator(one_call, start=START)
        moments = [moment for moment, _ in sim.due(START + 10_000)]
        return [b - a for a, b in itertools.pairwise(moments)]

    slow, fast = gaps(1), gaps(10)
    assert len(slow) >= 2
    assert fast == pytest.approx([g / 10 for g in slow])


def test_kcat_lines_are_replayable_envelopes() -> None:
    """Rendered lines are kcat -J envelopes whose payload decodes like the record."""
    _, records = minute_of_traffic()
    lines = list(kcat_lines(records[:50], "t"))
    assert len(lines) == 50
    for line, (moment, record) in zip(lines, records, strict=False):
        envelope = json.loads(line)
        assert envelope["ts"] == int(moment * 1000)
        if record.value is not None and record.kind != "malformed":
            assert decode(envelope["payload"]) == decode(record.value)
