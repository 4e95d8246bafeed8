"""The ``interaction-consumer`` command line (``python -m consumer`` is the same)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from yarl import URL

from consumer.commands import poll
from consumer.commands import run as service
from consumer.commands.replay import Replay
from consumer.daemon.policy import stall_policy
from consumer.engine.model import to_epoch
from consumer.engine.stalls import RULES, unknown_rules
from consumer.formats.alerts import Alert, encode_alert
from consumer.observe import logs
from consumer.settings.load import load_settings
from consumer.settings.schema import (
    MAX_THRESHOLD_SECONDS,
    ConfigError,
    Settings,
    valid_threshold,
)
from consumer.settings.secret import Secret
from consumer.simulator import dialer as simulate_api
from consumer.simulator.publish import publish
from consumer.simulator.traffic import Simulator, TrafficSettings, kcat_lines


def _stall_after(text: str) -> tuple[str, float]:
    rule, sep, seconds = text.partition("=")
    if not sep or unknown_rules([rule]):
        raise argparse.ArgumentTypeError(
            f"expected STAGE=SECONDS with STAGE one of {', '.join(RULES)}, got {text!r}"
        )
    try:
        value = float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: SECONDS is not a number") from None
    if not valid_threshold(value):  # nan, inf and negatives included
        raise argparse.ArgumentTypeError(
            f"{text!r}: SECONDS must be from 0 to {MAX_THRESHOLD_SECONDS:.0f} (a year)"
        )
    return rule, value


def _moment(text: str) -> float:
    try:
        return to_epoch(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date-time within years 1-9999 (UTC)"
        ) from None


# flag -> dotted setting, for the daemon's most used settings
_KAFKA_FLAGS = {
    "bootstrap_servers": "kafka.bootstrap_servers",
    "topic": "kafka.topic",
    "group_id": "kafka.group_id",
    "http_port": "http.port",
    "log_format": "log.format",
}


# the credentials the API double accepts unless GENESYS_CLIENT_ID/_SECRET say others
DOUBLE_CLIENT_ID = "demo-client"
DOUBLE_SECRET = "demo-secret"  # noqa: S105 - the double's made-up default, not a credential

# flag -> dotted setting, for the poll command
_POLL_FLAGS = {
    "region": "genesys.region",
    "api_base": "genesys.api_base",
    "login_base": "genesys.login_base",
    "campaign": "genesys.campaigns",
    "interval": "genesys.interval_seconds",
}


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


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


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("interaction-consumer")
    except importlib.metadata.PackageNotFoundError:  # a checkout on the path, not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interaction-consumer",
        description="Track outbound dialer interactions and alert on stalled preview calls.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-config",
        help="check the settings (file and environment) as run or poll would, print them",
    )
    check.add_argument("--config", type=Path, help="settings file (TOML)")
    check.add_argument(
        "--for",
        dest="command_checked",
        choices=["run", "poll"],
        default="run",
        help="the command whose start to check (default: run)",
    )
    run = commands.add_parser("run", help="consume the topic in a consumer group (the daemon)")
    _engine_options(run)
    run.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    run.add_argument("--topic")
    run.add_argument("--group-id")
    run.add_argument("--http-port", type=int, metavar="PORT")
    run.add_argument("--log-format", choices=["json", "text"])
    simulate = commands.add_parser(
        "simulate", help="publish synthetic dialer traffic to a topic, or print it as kcat -J lines"
    )
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--topic", help="produce to this topic, paced in real time")
    target.add_argument(
        "--output", choices=["-"], help="print kcat -J lines to stdout at once (for replay)"
    )
    target.add_argument(
        "--serve-api",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve the traffic as the Genesys Cloud Platform API (for poll), until stopped",
    )
    simulate.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    simulate.add_argument("--rate", type=float, default=5.0, help="interactions per second")
    simulate.add_argument(
        "--seconds", type=float, help="how long to start interactions (default: until stopped)"
    )
    simulate.add_argument("--speed", type=float, default=1.0, help="time compression factor")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--stall-share", type=float, default=0.1)
    simulate.add_argument("--malformed-share", type=float, default=0.02)
    _poll_parser(commands)
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


def _poll_parser(commands: Any) -> None:
    command = commands.add_parser(
        "poll", help="poll Genesys Cloud's outbound campaign interactions into the topic"
    )
    command.add_argument("--config", type=Path, help="settings file (TOML)")
    where = command.add_mutually_exclusive_group()
    where.add_argument("--region", metavar="HOST", help="e.g. mypurecloud.ie: api.HOST")
    where.add_argument("--api-base", metavar="URL", help="the Platform API base URL")
    command.add_argument("--login-base", metavar="URL", help="the login (OAuth) base URL")
    command.add_argument(
        "--campaign",
        action="append",
        metavar="ID",
        help="poll this campaign (repeatable; default: every preview campaign still live)",
    )
    command.add_argument(
        "--interval", type=float, metavar="SECONDS", help="poll each campaign so often"
    )
    command.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    command.add_argument("--topic")
    command.add_argument("--http-port", type=int, metavar="PORT")


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the file, the environment and this command's flags."""
    overrides: dict[str, Any] = {}
    if getattr(args, "stall_after", None):
        overrides["stalls"] = {"thresholds": dict(args.stall_after)}
    for flag, setting in (_KAFKA_FLAGS | _POLL_FLAGS).items():
        value = getattr(args, flag, None)
        if value is not None:
            section, name = setting.split(".")
            overrides.setdefault(section, {})[name] = value
    return load_settings(getattr(args, "config", None), env=os.environ, overrides=overrides)


def _checked(settings: Settings, command: str) -> Settings:
    """``settings`` once they pass what ``command`` (run or poll) checks before it starts.

    Raises :class:`~consumer.settings.schema.ConfigError` naming the setting. ``run``, ``poll`` and
    ``check-config`` all come through here, so the check is the start's own.
    """
    if command == "poll":
        poll.check(settings.genesys)
    else:
        stall_policy(settings)  # the stall rules named must exist
    return settings


def _redacted(value: object) -> object:
    if isinstance(value, Secret):
        return "***"
    raise NotImplementedError(type(value))


def effective_settings(settings: Settings) -> bytes:
    """The settings as JSON, every secret (and password in a URL) shown as ``***``."""
    tree = msgspec.to_builtins(settings, enc_hook=_redacted)
    tree["alertmanager"]["urls"] = [
        str(URL(url).with_password("***")) if URL(url).password else url
        for url in settings.alertmanager.urls
    ]
    return msgspec.json.format(msgspec.json.encode(tree), indent=2)


def _check_config(args: argparse.Namespace) -> int:
    settings = _checked(_settings(args), args.command_checked)
    sys.stdout.buffer.write(effective_settings(settings) + b"\n")
    print(f"interaction-consumer: configuration ok for {args.command_checked}", file=sys.stderr)
    return 0


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
    return 2


def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
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
    return 0


def _simulate(args: argparse.Namespace) -> int:
    traffic = TrafficSettings(
        rate=args.rate,
        speed=args.speed,
        seed=args.seed,
        stall_share=args.stall_share,
        malformed_share=args.malformed_share,
    )
    if args.output == "-":
        seconds = 60.0 if args.seconds is None else args.seconds
        start = time.time()
        sim = Simulator(traffic, start)
        records = sim.due(start + seconds) + sim.due(float("inf"), start_new=False)
        sys.stdout.buffer.writelines(kcat_lines(records, "simulated"))
        print(f"simulate: {len(records)} records, stalls {dict(sim.stalls)}", file=sys.stderr)
        return 0
    settings = _settings(args)
    logs.configure(settings.log.level, "text")
    if args.serve_api is not None:
        host, port = args.serve_api
        credentials = settings.genesys
        return asyncio.run(
            simulate_api.serve(
                traffic,
                host,
                port,
                credentials.client_id or DOUBLE_CLIENT_ID,
                credentials.client_secret.reveal() if credentials.client_secret else DOUBLE_SECRET,
            )
        )
    return asyncio.run(publish(settings.kafka, args.topic, traffic, args.seconds))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "run":
            return service.run(_checked(_settings(args), "run"))
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "poll":
            return poll.run(_checked(_settings(args), "poll"))
    except ConfigError as exc:
        print(f"interaction-consumer: configuration error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
