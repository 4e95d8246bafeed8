"""Offline replay: feed a dump of the topic through the daemon's pipeline on the dump's own clock.

Each line is a bare ``CampaignInteraction`` object or a record envelope as
``kcat -C -J`` writes it (``topic``, ``partition``, ``offset``, ``ts`` in epoch
milliseconds, ``key``, ``payload`` as a string or null for a tombstone, ``headers`` as a
flat list ``["name", "value", ...]``; the ``genesys.bucket`` header names the API's list
the interaction was in, as the daemon reads it). A UTF-8 byte order mark before the first
line of a file is skipped.

Each record goes through the daemon's own pipeline (:mod:`consumer.daemon.ingest`), so a
replay shows what the daemon would do: a value over ``kafka.max_record_bytes`` is invalid
(``too_large``), and so is one that does not decode; an invalid record moves no clock.
Time is event time, kept by a :class:`~consumer.engine.clock.PartitionClock`, and it
passes *before* each record: the record's time (its ``ts``; a ``ts`` of 0 or less means
none, and a line without one takes the newest lifecycle time of its snapshot) first
advances the clock and fires every stall due by then, then the record is applied at that
time, then what its change made due fires. So a closing that arrives after a threshold
still reports the stall, and alerts come out in the order they were observed.

A dump holds no future: a time further ahead of this machine's wall clock than
``runtime.max_clock_skew_seconds`` does not move the clock (the record is still applied),
nor is a snapshot's time believed whose own times run further than that ahead of the
clock; either is counted in the summary. A record that moves the clock by more than an
hour is warned about, since one skewed producer can fire every stall in flight.

Whatever one record makes the engine raise is that record's problem: it is reported as
``invalid record (engine_error)`` and the rest of the input is read. Heartbeat records
(the ``interaction-consumer.heartbeat`` header) are skipped and counted.

All partitions of a dump share one tracker and one clock: offline there is no ownership
to respect, and a producer that keys badly still gets every snapshot of an interaction
merged.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import msgspec
from prometheus_client import CollectorRegistry, generate_latest

from consumer.commands import exits, options
from consumer.daemon import ingest
from consumer.daemon.engine_metrics import EngineMetrics
from consumer.daemon.policy import stall_policy, step_settings, tracker_limits
from consumer.engine.alerting import REMOVALS, StallEvent
from consumer.engine.clock import PartitionClock
from consumer.engine.lists import NO_LIST, list_number
from consumer.engine.model import BUCKET_HEADER, Invalid, engine_error, iso
from consumer.engine.observations import Observations
from consumer.engine.stages import STAGES
from consumer.engine.tracker import Tracker
from consumer.formats import heartbeat
from consumer.formats.alerts import Alert, encode_alert, to_alert
from consumer.settings.schema import Settings

_BOM: Final = b"\xef\xbb\xbf"
# one record moving the clock further than this is worth a warning
JUMP_WARNING_SECONDS: Final = 3600.0


class _Envelope(msgspec.Struct):
    """The fields of a ``kcat -J`` line that replay needs.

    A bare snapshot has neither ``topic`` nor ``payload``. ``headers`` is read as any
    value so that an unexpected shape leaves the line an envelope without a heartbeat.
    """

    topic: str | msgspec.UnsetType = msgspec.UNSET
    ts: float | None = None
    key: str | None = None
    payload: str | msgspec.UnsetType | None = msgspec.UNSET
    headers: Any = None


_envelope: Final = msgspec.json.Decoder(_Envelope)


class _Line(NamedTuple):
    """One line taken apart: key and value, time (0: none), heartbeat, list (bucket)."""

    key: str | None
    value: bytes | None
    timestamp: float
    heartbeat: bool
    bucket: int = NO_LIST


def _bucket(headers: list[Any]) -> int:
    """The list a ``kcat -J`` header list names (names at even positions, then values)."""
    for name, value in zip(headers[::2], headers[1::2], strict=False):
        if name == BUCKET_HEADER and isinstance(value, str):
            return list_number(value)
    return NO_LIST


def _unwrap(line: bytes) -> _Line:
    """Key, value, timestamp in seconds, heartbeat or not and list, of one line."""
    try:
        envelope = _envelope.decode(line)
    except (msgspec.MsgspecError, RecursionError):
        # not an envelope (or nested too deep to tell): decoding it as a snapshot says why
        return _Line(None, line, 0.0, False)
    if envelope.topic is msgspec.UNSET or envelope.payload is msgspec.UNSET:
        return _Line(None, line, 0.0, False)
    ts, payload = envelope.ts, envelope.payload
    headers = envelope.headers
    listed = isinstance(headers, list)
    # kcat -J: names at even positions, each followed by its value
    beat = listed and heartbeat.HEADER in headers[::2]
    return _Line(
        envelope.key,
        # the value's bytes, as the daemon would read them (and measure their size)
        None if payload is None else payload.encode("utf-8", "surrogatepass"),
        0.0 if ts is None else ts / 1000.0,
        beat,
        _bucket(headers) if listed else NO_LIST,
    )


class Replay:
    """One replay run: a tracker, its clock and metrics, and running totals for the summary.

    ``emit`` receives each alert; ``report`` each line for stderr; ``wall`` is the wall
    clock that bounds the dump's timestamps.
    """

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        emit: Callable[[Alert], None],
        report: Callable[[str], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.obs = Observations()
        self.tracker = Tracker(stall_policy(settings), tracker_limits(settings), self.obs)
        self.metrics = EngineMetrics(
            registry, lambda: [self.tracker], settings.metrics.max_campaign_labels
        )
        self.emit = emit
        self.report = report
        self.wall = wall
        rules = step_settings(settings, persist_state=False)
        self.clock = PartitionClock(rules.max_clock_skew)
        self.max_record_bytes = rules.max_record_bytes
        self.records = 0
        self.invalid = 0
        self.heartbeats = 0
        self.future = 0
        self.alerts = {"firing": 0, "resolved": 0}
        self.removed: dict[str, int] = dict.fromkeys(REMOVALS, 0)

    def read(self, name: str, lines: Iterable[bytes]) -> None:
        """Feed every line of one input named ``name``."""
        for number, raw in enumerate(lines, start=1):
            self.line(f"{name}:{number}", raw.removeprefix(_BOM) if number == 1 else raw)

    def line(self, where: str, raw: bytes) -> None:
        """Feed one line; ``where`` (file:line) names it in the report of an invalid one."""
        if not raw.strip():
            return
        self.records += 1
        alerts: list[StallEvent] = []
        try:
            self._apply(where, raw, alerts)
        except Exception as exc:  # one record must not stop the replay, whatever it is
            self._invalid(where, engine_error(exc))
            # time passed to the record all the same: what fell due (owed by the tracker if
            # the record failed to apply) goes out with it
            alerts += self.tracker.tick(self.clock.now)
        self._send(alerts)

    def _apply(self, where: str, raw: bytes, alerts: list[StallEvent]) -> None:
        """The record through the daemon's pipeline, time passes to it, it applies."""
        record = _unwrap(raw)
        if record.heartbeat:
            self.heartbeats += 1
            return
        item = ingest.decode(record.key, record.value, record.bucket, self.max_record_bytes)
        if isinstance(item, Invalid):
            self._invalid(where, item)
            return
        clock = self.clock
        before = clock.now
        if not ingest.believed(clock, record.timestamp, item, self.wall()):
            self.future += 1
        jump = clock.now - before
        if before > 0 and jump > JUMP_WARNING_SECONDS:
            self.report(
                f"{where}: warning: this record moved the clock {jump:.0f} s forward, "
                f"to {iso(clock.now)}"
            )
        alerts += self.tracker.ingest(item, clock.now)

    def _invalid(self, where: str, item: Invalid) -> None:
        self.invalid += 1
        self.obs.invalid()
        self.report(f"{where}: invalid record ({item.reason}): {item.detail}")

    def advance(self, now: float) -> None:
        """After the input: move the clock forward to ``now`` and fire what is due by then."""
        self._send(self.tracker.tick(self.clock.settle(now, caught_up=True)))

    def _send(self, events: list[StallEvent]) -> None:
        for event in events:
            self.alerts[event.status] += 1
            self.emit(to_alert(event))

    def finish(self) -> None:
        """Flush what was observed into the metrics."""
        obs = self.obs.drain()
        for reason, n in obs.removals.items():
            self.removed[reason] += n
        self.metrics.record(obs)

    def summary(self) -> str:
        """Records, invalid, skipped, interactions per final stage, removals and alerts."""
        counts = self.tracker.stage_counts
        stages = " ".join(f"{stage.label}={counts[stage]}" for stage in STAGES)
        removed = " ".join(f"{reason}={n}" for reason, n in self.removed.items())
        return (
            f"replay: {self.records} records, {self.invalid} invalid, "
            f"{self.heartbeats} heartbeats skipped, {self.future} with future timestamps; "
            f"tracked at end: {stages}; removed: {removed}; "
            f"alerts: {self.alerts['firing']} firing, {self.alerts['resolved']} resolved"
        )


def add_parser(commands: Any) -> None:
    """The ``replay`` subcommand and its flags."""
    command = commands.add_parser(
        "replay",
        help="replay a dump (JSON lines, bare or kcat -J envelopes) and print its alerts",
    )
    command.set_defaults(main=main)
    command.add_argument("files", nargs="+", metavar="FILE", help="input file, - for stdin")
    options.engine_options(command)
    command.add_argument(
        "--end-time",
        type=options.moment,
        metavar="ISO-8601",
        help="advance the clock to this moment after the input, firing what is due",
    )
    command.add_argument(
        "--metrics-out", type=Path, metavar="FILE", help="write the final metrics exposition"
    )


def _unwritable(path: Path) -> OSError | None:
    """Why ``path`` cannot be written, found by opening it without truncating it; or None."""
    try:
        with open(path, "ab"):
            return None
    except OSError as exc:
        return exc


def _cannot_write(path: Path, exc: OSError) -> int:
    """Say that --metrics-out cannot be written; the exit status for it."""
    problem = exc.strerror or str(exc)
    print(f"interaction-consumer: cannot write --metrics-out {path}: {problem}", file=sys.stderr)
    return exits.USAGE


def main(args: argparse.Namespace) -> int:
    """Replay the files, alerts on stdout, the summary on stderr; the exit status."""
    settings = options.settings(args)
    # an output that cannot be written is found before the input is read, not after
    problem = None if args.metrics_out is None else _unwritable(args.metrics_out)
    if problem is not None:
        return _cannot_write(args.metrics_out, problem)
    with contextlib.ExitStack() as stack:
        inputs: list[tuple[str, IO[bytes]]] = []
        for name in args.files:
            if name == "-":
                inputs.append(("<stdin>", sys.stdin.buffer))
                continue
            try:
                inputs.append((name, stack.enter_context(open(name, "rb"))))
            except OSError as exc:
                print(f"interaction-consumer: cannot open {name}: {exc.strerror}", file=sys.stderr)
                return exits.USAGE
        out = sys.stdout.buffer

        def emit(alert: Alert) -> None:
            out.write(encode_alert(alert) + b"\n")
            out.flush()

        def report(message: str) -> None:
            print(message, file=sys.stderr)

        registry = CollectorRegistry()
        replay = Replay(settings, registry, emit, report)
        for name, stream in inputs:
            replay.read(name, stream)
        if args.end_time is not None:
            replay.advance(args.end_time)
        replay.finish()
    print(replay.summary(), file=sys.stderr)
    if args.metrics_out is not None:
        try:
            args.metrics_out.write_bytes(generate_latest(registry))
        except OSError as exc:
            return _cannot_write(args.metrics_out, exc)
    return exits.OK
