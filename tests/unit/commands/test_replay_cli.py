"""``interaction-consumer replay`` end to end, through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumer.engine.model import iso
from tests.unit.factory import T0

ROOT = Path(__file__).resolve().parents[3]
PHONE = "+15551234567"
T = T0 + 1200  # 2026-11-25T10:06:40Z; times below are offsets from it


def at(offset: float) -> str:
    """An ISO-8601 time ``offset`` seconds after T, as the dialer writes it."""
    return iso(T + offset)


def bare(document: dict[str, Any]) -> str:
    """A bare snapshot line, with personal data attached that must never come out."""
    return json.dumps({**document, "destinationAddress": PHONE, "callerName": "Jane Customer"})


def envelope(key: str, offset: float, document: dict[str, Any] | None) -> str:
    """A ``kcat -C -J`` line; ``document`` None is a tombstone."""
    payload = None if document is None else json.dumps(document)
    return json.dumps(
        {
            "topic": "campaign-interactions",
            "partition": 0,
            "offset": 1,
            "tstype": "create",
            "ts": int((T + offset) * 1000),
            "broker": 1,
            "key": key,
            "payload": payload,
        }
    )


LINES = [
    bare(
        {
            "id": "stuck",
            "creationTime": at(0),
            "previewPopDeliveredTime": at(0),
            "dialingMode": "PREVIEW",
            "activePreviewCall": True,
            "campaign": {"id": "c-1"},
        }
    ),
    envelope(
        "slow",
        10,
        {
            "id": "slow",
            "call_placed_time": at(10),
            "dialing_mode": "preview",
            "active_preview_call": True,
        },
    ),
    "",
    "garbage",
    bare(
        {
            "id": "normal",
            "creationTime": at(0),
            "callPlacedTime": at(20),
            "previewConnectedTime": at(25),
            "lastActivePreviewWrapupTime": at(60),
            "dialingMode": "power",
            "activePreviewCall": False,
        }
    ),
    envelope(
        "slow",
        120,
        {
            "id": "slow",
            "callPlacedTime": at(10),
            "previewConnectedTime": at(120),
            "dialingMode": "preview",
            "activePreviewCall": True,
        },
    ),
    envelope(
        "doomed",
        5,
        {
            "id": "doomed",
            "previewPopDeliveredTime": at(5),
            "dialingMode": "preview",
            "activePreviewCall": True,
        },
    ),
    envelope("doomed", 360, None),
    '{"id": 5}',
]


def replay(
    tmp_path: Path, *args: str, lines: list[str] = LINES, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI on a dump of ``lines``."""
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    argv = [a.replace("{dump}", str(dump)) for a in args] or [str(dump)]
    return subprocess.run(
        [sys.executable, "-m", "consumer", "replay", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def alerts(done: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str, str | None]]:
    """(interaction, status, rule, resolution) of each alert line, in order."""
    return [
        (a["interactionId"], a["status"], a["rule"], a["resolution"])
        for a in map(json.loads, done.stdout.splitlines())
    ]


def test_mixed_dump_gives_the_right_alerts_in_order(tmp_path: Path) -> None:
    """Bare and kcat lines replay on event time into exactly the expected alerts, in order.

    Time passes before each record: the tombstone at +360 s first fires what fell due by
    then (stuck at +300 s, doomed at +305 s), then ends doomed.
    """
    done = replay(tmp_path)
    assert done.returncode == 0, done.stderr
    assert alerts(done) == [
        ("slow", "firing", "placed", None),
        ("slow", "resolved", "placed", "moved_on"),
        # time passes before the tombstone at 360: both previews came due, then one ends
        ("stuck", "firing", "previewing", None),
        ("doomed", "firing", "previewing", None),
        ("doomed", "resolved", "previewing", "tombstone"),
    ]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[0]["alertId"] == records[1]["alertId"]
    assert records[3]["alertId"] == records[4]["alertId"]
    assert [r["observedAt"] for r in records[2:]] == [at(360)] * 3
    assert records[4]["stalledForSeconds"] == 355  # popped at 5, tombstoned at 360


def test_invalid_lines_are_reported_and_counted(tmp_path: Path) -> None:
    """Each invalid line is named by file and line with its reason; the summary counts them."""
    done = replay(tmp_path)
    dump = tmp_path / "dump.jsonl"
    assert f"{dump}:4: invalid record (not_json)" in done.stderr
    assert f"{dump}:9: invalid record (invalid_field)" in done.stderr
    assert "$.id" in done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("replay: 8 records, 2 invalid, 0 heartbeats skipped, 0 with future")
    assert "previewing=1" in summary  # stuck is still tracked
    assert "alerts: 3 firing, 2 resolved" in summary


def test_stdin_and_end_time(tmp_path: Path) -> None:
    """``-`` reads stdin; --end-time fires what is due by then."""
    lines = LINES[:1]
    early = replay(tmp_path, "-", stdin="\n".join(lines) + "\n")
    assert alerts(early) == []
    late = replay(tmp_path, "-", "--end-time", at(300), stdin="\n".join(lines) + "\n")
    assert alerts(late) == [("stuck", "firing", "previewing", None)]


def test_stall_after_and_config_change_thresholds(tmp_path: Path) -> None:
    """--stall-after and a settings file set thresholds; 0 switches a rule off."""
    quick = replay(tmp_path, "{dump}", "--stall-after", "previewing=10")
    assert alerts(quick)[0] == ("stuck", "firing", "previewing", None)
    settings = tmp_path / "settings.toml"
    settings.write_text("[stalls.thresholds]\nplaced = 0\n")
    calm = replay(tmp_path, "{dump}", "--config", str(settings))
    assert "slow" not in {interaction for interaction, *_ in alerts(calm)}


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "31536001", "1e400", "-1"])
def test_stall_after_rejects_non_finite_and_over_a_year(tmp_path: Path, seconds: str) -> None:
    """--stall-after takes 0 to a year of seconds; nan, inf and more exit 2 naming the flag."""
    done = replay(tmp_path, "{dump}", "--stall-after", f"placed={seconds}")
    assert done.returncode == 2
    assert "--stall-after" in done.stderr
    assert "a year" in done.stderr
    assert done.stdout == ""


def test_usage_errors_and_unopenable_input(tmp_path: Path) -> None:
    """A bad flag or a missing file exits 2 with a message and prints no alert."""
    bogus = replay(tmp_path, "{dump}", "--stall-after", "bogus=1")
    assert bogus.returncode == 2
    assert "STAGE=SECONDS" in bogus.stderr
    missing = replay(tmp_path, "{dump}", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "cannot open" in missing.stderr
    assert missing.stdout == ""


def test_metrics_out_and_no_personal_data(tmp_path: Path) -> None:
    """--metrics-out writes the exposition; no phone number or name appears anywhere."""
    metrics = tmp_path / "metrics.txt"
    done = replay(tmp_path, "{dump}", "--metrics-out", str(metrics))
    exposition = metrics.read_text()
    assert 'dialer_events_total{outcome="invalid"} 2.0' in exposition
    assert 'dialer_stall_alerts_total{stage="previewing"} 2.0' in exposition
    assert 'dialer_preview_stalled{campaign="c-1",stage="previewing"} 1.0' in exposition
    for text in (done.stdout, done.stderr, exposition):
        assert PHONE not in text
        assert "Jane Customer" not in text


@pytest.mark.parametrize("target", ["missing-dir/metrics.txt", "."])
def test_unwritable_metrics_out_exits_2_before_reading(tmp_path: Path, target: str) -> None:
    """An unwritable --metrics-out is named with exit status 2, before any input is read."""
    path = tmp_path / target
    done = replay(tmp_path, "{dump}", "--metrics-out", str(path))
    assert done.returncode == 2
    assert f"cannot write --metrics-out {path}" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no alert: the input was not replayed
    assert "replay:" not in done.stderr


def test_end_time_beyond_year_9999_in_utc_is_a_usage_error(tmp_path: Path) -> None:
    """--end-time must stay within years 1-9999 in UTC, where alerts can be formatted."""
    done = replay(tmp_path, "{dump}", "--end-time", "9999-12-31T23:59:59-05:00")
    assert done.returncode == 2
    assert "--end-time" in done.stderr
    assert "years 1-9999" in done.stderr


def test_a_file_with_a_byte_order_mark_replays(tmp_path: Path) -> None:
    """A dump saved with a UTF-8 BOM (as some Windows editors write) reads its first line."""
    done = replay(tmp_path, lines=["\ufeff" + LINES[0]], stdin=None)
    assert "invalid record" not in done.stderr
    assert "1 records, 0 invalid" in done.stderr
    assert "previewing=1" in done.stderr
