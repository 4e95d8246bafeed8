"""What several commands' command lines share: flags, their parsers, and settings from them.

Settings come from the file (``--config``), the environment and the flags, in that order
of precedence (the flags win); each command maps its own flags onto dotted settings.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from consumer.engine.model import to_epoch
from consumer.engine.stalls import RULES, unknown_rules
from consumer.settings.load import load_settings
from consumer.settings.schema import MAX_THRESHOLD_SECONDS, Settings, valid_threshold

# flag -> dotted setting, for the daemon's most used settings
KAFKA_FLAGS: Mapping[str, str] = {
    "bootstrap_servers": "kafka.bootstrap_servers",
    "topic": "kafka.topic",
    "group_id": "kafka.group_id",
    "http_port": "http.port",
    "log_format": "log.format",
}


def stall_after(text: str) -> tuple[str, float]:
    """``--stall-after STAGE=SECONDS``: a known rule and a threshold from 0 to a year."""
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


def moment(text: str) -> float:
    """An ISO-8601 date-time flag as epoch seconds (UTC when it names no offset)."""
    try:
        return to_epoch(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date-time within years 1-9999 (UTC)"
        ) from None


def host_port(text: str) -> tuple[str, int]:
    """A ``HOST:PORT`` flag."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def config_option(command: argparse.ArgumentParser) -> None:
    """``--config``: the settings file."""
    command.add_argument("--config", type=Path, help="settings file (TOML)")


def engine_options(command: argparse.ArgumentParser) -> None:
    """Options shared by commands that run the engine."""
    config_option(command)
    command.add_argument(
        "--stall-after",
        type=stall_after,
        action="append",
        default=[],
        metavar="STAGE=SECONDS",
        help="threshold for one stall rule (repeatable; 0 switches it off)",
    )


def settings(args: argparse.Namespace, flags: Mapping[str, str] = KAFKA_FLAGS) -> Settings:
    """Settings from the file, the environment and the command's ``flags`` (flag -> setting)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "stall_after", None):
        overrides["stalls"] = {"thresholds": dict(args.stall_after)}
    for flag, setting in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            section, name = setting.split(".")
            overrides.setdefault(section, {})[name] = value
    return load_settings(getattr(args, "config", None), env=os.environ, overrides=overrides)
