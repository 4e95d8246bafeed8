"""The ``interaction-consumer`` command line (``python -m consumer`` is the same)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from prometheus_client import CollectorRegistry, generate_latest

from consumer import config, service
from consumer.model import to_epoch
from consumer.replay import Replay
from consumer.stalls import RULES, Alert, encode_alert


def _stall_after(text: str) -> tuple[str, float]:
    rule, sep, seconds = text.partition("=")
    if not sep or rule not in RULES:
        raise argparse.ArgumentTypeError(
            f"expected STAGE=SECONDS with STAGE one of {', '.join(RULES)}, got {text!r}"
        )
    try:
        value = float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: SECONDS is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: SECONDS must be 0 or more")
    return rule, value


def _moment(text: str) -> float:
    try:
        return to_epoch(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 date-time") from None


# flag -> dotted setting, for the daemon's most used settings
_RUN_FLAGS = {
    "bootstrap_servers": "kafka.bootstrap_servers",
    "topic": "kafka.topic",
    "group_id": "kafka.group_id",
    "http_port": "http.port",
    "log_format": "log.format",
}


def _engine_options(command: argparse.ArgumentParser) -> None:
    """Options shared by commands that run the engine."""
    command.add_argument("--config", type=Path, help="settings file (TOML)")
    command.add_argument(
        "--stall-after",
        type=_stall_after,
        action="append",
        default=[],
        metavar="STAGE=SECONDS",
        help="threshold for one stall rule (repeatable; 0 switches it off)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interaction-consumer",
        description="Track outbound dialer interactions and alert on stalled preview calls.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="consume the topic in a consumer group (the daemon)")
    _engine_options(run)
    run.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    run.add_argument("--topic")
    run.add_argument("--group-id")
    run.add_argument("--http-port", type=int, metavar="PORT")
    run.add_argument("--log-format", choices=["json", "text"])
    replay = commands.add_parser(
        "replay",
        help="replay a dump (JSON lines, bare or kcat -J envelopes) and print its alerts",
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="input file, - for stdin")
    _engine_options(replay)
    replay.add_argument(
        "--end-time",
        type=_moment,
        metavar="ISO-8601",
        help="advance the clock to this moment after the input, firing what is due",
    )
    replay.add_argument(
        "--metrics-out", type=Path, metavar="FILE", help="write the final metrics exposition"
    )
    return parser


def _settings(args: argparse.Namespace) -> config.Settings:
    """Settings from the file, the environment and this command's flags."""
    overrides: dict[str, Any] = {}
    if args.stall_after:
        overrides["stalls"] = {"thresholds": dict(args.stall_after)}
    for flag, setting in _RUN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            section, name = setting.split(".")
            overrides.setdefault(section, {})[name] = value
    return config.load_settings(args.config, env=os.environ, overrides=overrides)


def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
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
                return 2
        out = sys.stdout.buffer

        def emit(alert: Alert) -> None:
            out.write(encode_alert(alert) + b"\n")
            out.flush()

        def report(message: str) -> None:
            print(message, file=sys.stderr)

        registry = CollectorRegistry()
        replay = Replay(settings, registry, emit, report)
        for name, stream in inputs:
            for number, line in enumerate(stream, start=1):
                replay.line(f"{name}:{number}", line)
        if args.end_time is not None:
            replay.advance(args.end_time)
        replay.finish()
    print(replay.summary(), file=sys.stderr)
    if args.metrics_out is not None:
        args.metrics_out.write_bytes(generate_latest(registry))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "run":
            return service.run(_settings(args))
    except config.ConfigError as exc:
        print(f"interaction-consumer: configuration error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
