"""``interaction-consumer check-config``: the start's own checks, without starting.

It runs what ``run`` or ``poll`` (``--for``) checks before it connects anywhere, then prints
the effective settings as JSON with every secret (and a password in a URL) as ``***``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec
from yarl import URL

from consumer.commands import exits, options, poll, run
from consumer.settings.schema import Settings
from consumer.settings.secret import Secret


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


def add_parser(commands: Any) -> None:
    """The ``check-config`` subcommand and its flags."""
    command = commands.add_parser(
        "check-config",
        help="check the settings (file and environment) as run or poll would, print them",
    )
    command.set_defaults(main=main)
    options.config_option(command)
    command.add_argument(
        "--for",
        dest="command_checked",
        choices=["run", "poll"],
        default="run",
        help="the command whose start to check (default: run)",
    )


def main(args: argparse.Namespace) -> int:
    """Check, print the effective settings; the exit status (2 and the setting if refused)."""
    if args.command_checked == "poll":
        settings = options.settings(args, poll.FLAGS)
        poll.check(settings.genesys)
    else:
        settings = options.settings(args)
        run.check(settings)
    sys.stdout.buffer.write(effective_settings(settings) + b"\n")
    print(f"interaction-consumer: configuration ok for {args.command_checked}", file=sys.stderr)
    return exits.OK
