"""Log lines as JSON with their context."""

from __future__ import annotations

import io
import json
import logging

from consumer.observe import logs


def test_json_log_line_carries_context() -> None:
    """A log call's fields become keys of one JSON line beside ts, level and event."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("dead_letter", extra=logs.fields(topic="t", partition=2, offset=41))
    finally:  # leave logging as it was for the tests after this one
        log.removeHandler(handler)
        log.propagate = True
    line = json.loads(stream.getvalue())
    assert line["event"] == "dead_letter"
    assert line["level"] == "WARNING"
    assert (line["topic"], line["partition"], line["offset"]) == ("t", 2, 41)
    assert line["ts"].endswith("Z")
