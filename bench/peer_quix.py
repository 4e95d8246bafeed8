"""The peer contender: the same per-interaction tracking written with Quix Streams.

What a user would most likely write instead of this service: a Quix Streams
``Application`` reading the topic with its default JSON value deserializer and one
stateful ``apply`` whose state (Quix's RocksDB store, with its changelog topic as by
default) is keyed by the message key, the interaction id. Per interaction it keeps the
newest time of each of the six lifecycle stages and the stage they imply; a tombstone,
or a wrap-up that is no longer an active preview call, deletes the state. Malformed
records (not JSON, not UTF-8, not an object, a badly typed time or campaign) are counted and
skipped. No stall timers, metrics or outputs.

It drains the topic from the earliest offset in a fresh consumer group and stops after
``N`` records (all partitions together), then prints one JSON line on stdout, timed from
the first record processed to the ``N``-th; everything else goes to stderr::

    .venv/bin/python -m bench.peer_quix --bootstrap HOST:PORT --topic TOPIC --records N \
        [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import uuid
from datetime import datetime
from typing import Any

from quixstreams import Application, State
from quixstreams.models import SerializationError

from bench.naive import STAGE_FIELDS, WRAPPED_UP
from bench.progress import Progress

STAGES = ("created", "previewing", "placed", "routed", "connected", "wrapped_up")
STATE_KEY = "interaction"  # the one state entry per message key
IDLE_TIMEOUT = 60.0  # seconds without a record before giving up on reaching N


def _epoch(text: Any) -> float | None:
    """An ISO-8601 time as epoch seconds; ``None`` if absent; ``ValueError`` if bad."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")
    return datetime.fromisoformat(text).timestamp()


def track(value: Any, state: State[str, Any]) -> bool:
    """Apply one snapshot (or tombstone, ``None``) to the interaction's state.

    Returns whether the record was valid.
    """
    if value is None:
        state.delete(STATE_KEY)
        return True
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        return False
    campaign = value.get("campaign")
    if campaign is not None and not isinstance(campaign, dict):
        return False
    try:
        times = [_epoch(value.get(camel, value.get(snake))) for camel, snake in STAGE_FIELDS]
    except (ValueError, TypeError):
        return False
    known: dict[str, Any] | None = state.get(STATE_KEY)
    if known is not None:
        times = [
            old if new is None or (old is not None and old > new) else new
            for old, new in zip(known["times"], times, strict=True)
        ]
    stage = max((i for i, moment in enumerate(times) if moment is not None), default=-1)
    active = value.get("activePreviewCall", value.get("active_preview_call"))
    if stage == WRAPPED_UP and not active:
        state.delete(STATE_KEY)
        return True
    state.set(
        STATE_KEY,
        {
            "campaign": None if campaign is None else campaign.get("id"),
            "dialing_mode": value.get("dialingMode", value.get("dialing_mode")),
            "times": times,
            "stage": STAGES[stage] if stage >= 0 else None,
            "active": bool(active),
        },
    )
    return True


def run(bootstrap: str, topic: str, records: int, state_dir: str) -> tuple[Progress, int]:
    """Drain ``topic`` with a Quix Streams application until ``records`` are processed.

    Returns the progress and how many records were invalid.
    """
    progress = Progress(records)
    invalid = 0
    app: Application

    def on_consumer_error(exc: Exception, message: Any, logger: logging.Logger) -> bool:
        """A record the JSON deserializer rejects counts as processed and is skipped."""
        if message is None or not isinstance(exc, SerializationError):
            return False  # a Kafka error: let it stop the application
        nonlocal invalid
        invalid += 1
        if progress.add(1):
            app.stop()
        return True

    def process(value: Any, state: State[str, Any]) -> None:
        """Track one record, count it, stop the application at the N-th."""
        nonlocal invalid
        if not track(value, state):
            invalid += 1
        if progress.add(1):
            app.stop()

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:12]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        on_consumer_error=on_consumer_error,
        loglevel="WARNING",
    )
    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf = sdf.apply(process, stateful=True)
    app.run(timeout=IDLE_TIMEOUT, collect=False)
    return progress, invalid


def main() -> None:
    """Parse the arguments, run, print the result line (exit 1 if short of N records)."""
    parser = argparse.ArgumentParser(prog="bench.peer_quix")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--state-dir", help="RocksDB state directory (default: a temporary one)")
    args = parser.parse_args()
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="bench-quix-state-")
    try:
        progress, invalid = run(args.bootstrap, args.topic, args.records, state_dir)
    finally:
        if not args.state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)
    print(f"quix: {invalid} invalid records", file=sys.stderr)
    if progress.records < args.records:
        print(f"quix: only {progress.records} of {args.records} records", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(progress.report("quix")), flush=True)


if __name__ == "__main__":
    main()
