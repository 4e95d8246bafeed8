"""Replay in process: time before each record, the clock's bounds, and records that fail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumer.commands.replay import Replay
from consumer.engine.alerting import StallEvent
from consumer.engine.model import iso
from consumer.engine.tracker import Tracker
from consumer.formats.alerts import Alert
from consumer.formats.heartbeat import HEADER
from consumer.settings.load import load_settings
from tests.unit.factory import T0

WALL = T0 + 86400.0  # the machine running the replay: a day after the dump
YEAR = 365 * 86400.0


class Run:
    """A replay with a fixed wall clock, keeping its alerts and its reports."""

    def __init__(self, *, wall: float = WALL, **settings: Any) -> None:
        self.alerts: list[Alert] = []
        self.reports: list[str] = []
        self.replay = Replay(
            load_settings(overrides=settings),
            CollectorRegistry(),
            self.alerts.append,
            self.reports.append,
            wall=lambda: wall,
        )

    def feed(self, *lines: str | bytes) -> Run:
        """Feed lines as one input named ``dump``."""
        raw = [line if isinstance(line, bytes) else line.encode() for line in lines]
        self.replay.read("dump", raw)
        return self

    def seen(self) -> list[tuple[str, str, str | None, str]]:
        """(interaction, status, resolution, observedAt) of each alert, in order."""
        return [(a.interaction_id, a.status, a.resolution, a.observed_at) for a in self.alerts]


def preview(iid: str, popped: float, **fields: Any) -> dict[str, Any]:
    """An active preview snapshot popped ``popped`` seconds after T0."""
    return {
        "id": iid,
        "dialingMode": "preview",
        "activePreviewCall": True,
        "creationTime": iso(T0 + popped),
        "previewPopDeliveredTime": iso(T0 + popped),
        **fields,
    }


def envelope(
    key: str, ts_ms: float | None, document: dict[str, Any] | None, headers: Any = None
) -> str:
    """A ``kcat -C -J`` line; ``document`` None is a tombstone."""
    line = {
        "topic": "t",
        "partition": 0,
        "offset": 0,
        "ts": ts_ms,
        "key": key,
        "payload": None if document is None else json.dumps(document),
    }
    if headers is not None:
        line["headers"] = headers
    return json.dumps(line)


def at(offset: float) -> float:
    """The envelope ``ts`` (epoch ms) ``offset`` seconds after T0."""
    return (T0 + offset) * 1000


def test_a_closing_after_the_threshold_fires_the_stall_before_it_applies() -> None:
    """A call closed by flag after its threshold, nothing in between: fired, then resolved."""
    call = preview("i-1", 0, dialingMode="power", callPlacedTime=iso(T0))
    run = Run().feed(
        envelope("i-1", at(0), call),
        # an admin's "disconnect interactions": the flag drops, no newer time in it
        envelope("i-1", at(400), call | {"activePreviewCall": False}),
    )
    assert [(i, s) for i, s, _, _ in run.seen()] == [("i-1", "firing"), ("i-1", "resolved")]
    assert run.alerts[0].observed_at == iso(T0 + 400)


def test_stalls_due_before_a_record_fire_before_it_in_due_order() -> None:
    """A record first fires every stall due by its time, oldest first, then applies."""
    run = Run().feed(
        envelope("a", at(0), preview("a", 0)),
        envelope("b", at(5), preview("b", 5)),
        envelope("b", at(360), None),
    )
    assert run.seen() == [
        ("a", "firing", None, iso(T0 + 360)),
        ("b", "firing", None, iso(T0 + 360)),
        ("b", "resolved", "tombstone", iso(T0 + 360)),
    ]


def test_a_timestamp_beyond_the_skew_bound_moves_nothing_but_its_record_applies() -> None:
    """A ts ten years ahead: the clock stays, the record is tracked, the summary counts it."""
    wall = T0 + 100
    run = Run(
        wall=wall,
        runtime={"max_clock_skew_seconds": 60},
        stalls={"thresholds": {"previewing": 60}},
    ).feed(
        envelope("a", at(0), preview("a", 0)),
        envelope("b", (wall + 10 * YEAR) * 1000, preview("b", 10)),
        envelope("c", (wall + 61) * 1000, preview("c", 20)),
    )
    assert run.alerts == []  # nothing fired at a time from the future
    assert set(run.replay.tracker.states) == {"a", "b", "c"}
    assert run.replay.clock.now == T0
    run.feed(envelope("d", (wall + 59) * 1000, None))  # within the bound: credible
    assert run.replay.future == 2
    assert "2 with future timestamps" in run.replay.summary()
    assert [(i, s) for i, s, _, _ in run.seen()] == [
        ("a", "firing"),
        ("b", "firing"),
        ("c", "firing"),
    ]
    assert {a.observed_at for a in run.alerts} == {iso(wall + 59)}


def test_a_bare_snapshot_from_the_future_is_counted_and_still_tracked() -> None:
    """A bare line's time is its newest lifecycle time, under the same bound."""
    run = Run().feed(json.dumps(preview("a", 0)), json.dumps(preview("z", WALL - T0 + YEAR)))
    assert run.replay.future == 1
    assert run.replay.clock.now == T0
    assert "z" in run.replay.tracker.states


@pytest.mark.parametrize("ts", [0, -1, -1_000_000_000_000, None])
def test_an_envelope_ts_of_zero_or_less_means_no_timestamp(ts: int | None) -> None:
    """Without a ts the snapshot's own time is the record's time: nothing expires at 1970."""
    run = Run().feed(
        envelope("a", ts, preview("a", 0)),
        json.dumps(preview("b", 301)),  # another interaction moves the clock past a's threshold
    )
    assert run.seen() == [("a", "firing", None, iso(T0 + 301))]
    assert run.replay.removed["expired"] == 0
    assert run.replay.future == 0


def test_a_jump_of_more_than_an_hour_is_warned_with_its_line() -> None:
    """One record moving the clock over an hour is warned on; the first record and 59 min not."""
    run = Run().feed(
        envelope("a", at(0), None),
        envelope("b", at(3540), None),
        envelope("c", at(3540 + 3601), None),
    )
    assert len(run.reports) == 1
    assert run.reports[0].startswith("dump:3: warning: this record moved the clock 3601 s")


def test_a_record_the_engine_raises_on_is_reported_counted_and_passed() -> None:
    """An exception from the engine is that record's engine_error; the rest is still read."""
    run = Run()

    class Fragile(Tracker):
        def ingest(self, item: Any, now: float) -> list[StallEvent]:
            if item.interaction_id == "poison":
                raise ZeroDivisionError("float division by zero")
            return super().ingest(item, now)

    old = run.replay.tracker
    run.replay.tracker = Fragile(old.policy, old.limits, old.obs)
    run.feed(
        envelope("a", at(0), preview("a", 0)),
        envelope("poison", at(400), preview("poison", 0)),
        envelope("b", at(401), preview("b", 401)),
    )
    assert run.reports == [
        "dump:2: invalid record (engine_error): ZeroDivisionError: float division by zero"
    ]
    assert run.replay.invalid == 1
    # what fell due before the failing record still went out, and the next record applied
    assert [(i, s) for i, s, _, _ in run.seen()] == [("a", "firing")]
    assert "b" in run.replay.tracker.states


def test_a_bare_line_nested_a_thousand_deep_is_too_deep() -> None:
    """Deep nesting in a bare line is ``too_deep``, not a RecursionError; the next line reads."""
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    run = Run().feed(deep, json.dumps(preview("a", 0)))
    assert run.reports == ["dump:1: invalid record (too_deep): JSON nested too deeply to read"]
    assert "a" in run.replay.tracker.states


def test_a_byte_order_mark_on_the_first_line_is_accepted() -> None:
    """A UTF-8 BOM before the first line is skipped; one on a later line is still invalid."""
    line = json.dumps(preview("a", 0)).encode()
    run = Run().feed(b"\xef\xbb\xbf" + line, b"\xef\xbb\xbf" + line)
    assert len(run.reports) == 1
    assert run.reports[0].startswith("dump:2: invalid record (not_json)")
    assert "a" in run.replay.tracker.states


@pytest.mark.parametrize(
    "headers",
    [[HEADER, "poller"], ["traceparent", "x", HEADER, "poller"], [HEADER, None]],
)
def test_heartbeat_records_are_skipped_and_counted(headers: list[str | None]) -> None:
    """A kcat envelope with the heartbeat header is no snapshot: skipped, counted, not invalid."""
    beat = {"source": "poller", "upTo": iso(T0 + 999), "intervalSeconds": 10}
    run = Run().feed(
        envelope("a", at(0), preview("a", 0)),
        envelope("poller", at(999), beat, headers=headers),
    )
    assert run.reports == []
    assert run.replay.heartbeats == 1
    assert run.replay.invalid == 0
    assert run.replay.clock.now == T0  # skipped: its time moves nothing either
    assert "1 heartbeats skipped" in run.replay.summary()


@pytest.mark.parametrize("headers", [["other", HEADER], {"name": HEADER}, "x", [1, 2]])
def test_other_headers_do_not_make_a_heartbeat(headers: Any) -> None:
    """The header name must be at a name position of a flat list; anything else is data."""
    run = Run().feed(envelope("a", at(0), preview("a", 0), headers=headers))
    assert run.replay.heartbeats == 0
    assert "a" in run.replay.tracker.states


def callback(iid: str, **fields: Any) -> dict[str, Any]:
    """A preview-campaign interaction as the API lists it while scheduled: created only."""
    return {"id": iid, "dialingMode": "preview", "creationTime": iso(T0), **fields}


def test_a_scheduled_callback_in_a_kcat_dump_fires_nothing_until_popped() -> None:
    """The envelope's genesys.bucket header: scheduled waits quietly, popped fires on time."""
    popped = callback("cb", activePreviewCall=True, previewPopDeliveredTime=iso(T0 + 7200))
    run = Run().feed(
        envelope("cb", at(0), callback("cb"), headers=["genesys.bucket", "scheduled"]),
        envelope("other", at(7000), callback("other"), headers=["genesys.bucket", "pending"]),
        envelope(
            "cb",
            at(7200),
            popped,
            headers=["genesys.polled.at", iso(T0 + 7200), "genesys.bucket", "previewing"],
        ),
    )
    run.replay.advance(T0 + 7200 + 299)
    assert run.alerts == []
    run.replay.advance(T0 + 7200 + 300)
    assert run.seen() == [("cb", "firing", None, iso(T0 + 7500))]
    assert run.alerts[0].stage == "previewing"


@pytest.mark.parametrize("headers", [None, ["genesys.bucket", None], ["genesys.bucket"]])
def test_without_a_usable_bucket_header_created_fires_unless_switched_off(headers: Any) -> None:
    """No list in the envelope: created fires as before, or not at all with the setting off."""
    line = envelope("cb", at(0), callback("cb"), headers=headers)
    run = Run().feed(line)
    run.replay.advance(T0 + 120)
    assert [(a.status, a.stage) for a in run.alerts] == [("firing", "created")]
    off = Run(stalls={"created_without_bucket": False}).feed(line)
    off.replay.advance(T0 + 3600)
    assert off.alerts == []
