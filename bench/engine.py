"""Engine benchmark: decode and track simulated traffic in process, against a naive baseline.

No broker: this isolates the per-record cost of the engine (what ``make bench`` adds the
Kafka client to in the end-to-end benchmarks of issue 6). Both contenders get the same
records, in the same run:

* naive: what a user might write first: ``json.loads``, a dataclass per snapshot, a
  dict of latest states by id, a stage from the newest timestamp;
* engine: ``consumer.model.decode_record`` and ``Tracker.ingest``, with every rule
  (merge, endings, stall timers, observations).

Prints records per second for each, microseconds per record, and engine / naive.

    .venv/bin/python -m bench.engine [RECORDS]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.model import Invalid, decode_record
from consumer.simulate import Record, Simulator, TrafficSettings
from consumer.stalls import StallPolicy
from consumer.tracker import Limits, Observations, Tracker

START = 1_800_000_000.0
STAGE_FIELDS = (
    "creationTime",
    "previewPopDeliveredTime",
    "callPlacedTime",
    "callRoutedTime",
    "previewConnectedTime",
    "lastActivePreviewWrapupTime",
)


@dataclass
class NaiveState:
    """The naive contender's state: the raw fields it cares about."""

    interaction_id: str
    campaign: str | None
    stage: int
    updated: float


def naive(records: list[tuple[float, Record]]) -> int:
    """Per-message json.loads, a dataclass, a dict of states; returns states kept."""
    states: dict[str, NaiveState] = {}
    for _, record in records:
        if record.value is None:
            states.pop((record.key or b"").decode(), None)
            continue
        try:
            document: dict[str, Any] = json.loads(record.value)
        except ValueError:
            continue
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            continue
        stage, newest = 0, 0.0
        for index, name in enumerate(STAGE_FIELDS):
            value = document.get(name)
            if isinstance(value, str):
                moment = datetime.fromisoformat(value).timestamp()
                if moment >= newest:
                    stage, newest = index, moment
        campaign = document.get("campaign")
        campaign_id = campaign.get("id") if isinstance(campaign, dict) else None
        states[document["id"]] = NaiveState(document["id"], campaign_id, stage, newest)
    return len(states)


def engine(records: list[tuple[float, Record]]) -> int:
    """The real decode and tracker; returns interactions tracked."""
    tracker = Tracker(StallPolicy(), Limits(), Observations())
    for moment, record in records:
        item = decode_record(record.key, record.value)
        if not isinstance(item, Invalid):
            tracker.ingest(item, moment)
        tracker.tick(moment)
    return len(tracker)


def main() -> None:
    """Time both contenders on the same simulated records."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    rate = 2000.0  # interactions begun per second; each makes about five records
    sim = Simulator(TrafficSettings(rate=rate, seed=1), START)
    begun = START + count / (rate * 4)
    records = (sim.due(begun) + sim.due(float("inf"), start_new=False))[:count]
    print(f"engine benchmark: {len(records):,} simulated records")
    results = {}
    for name, contender in (("naive", naive), ("engine", engine)):
        started = time.perf_counter()
        contender(records)
        seconds = time.perf_counter() - started
        results[name] = len(records) / seconds
        print(
            f"  {name:>6}: {results[name]:>9,.0f} records/s  {1e6 / results[name]:5.2f} us/record"
        )
    print(f"  engine / naive: {results['engine'] / results['naive']:.2f}")


if __name__ == "__main__":
    main()
