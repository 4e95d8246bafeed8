"""The ``interaction-consumer`` command line (``python -m consumer`` is the same).

Each subcommand is a module of this package with ``add_parser`` and ``main``; every one
exits with the statuses of :mod:`consumer.commands.exits`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence

from consumer.commands import check, exits, poll, replay, run, simulate
from consumer.settings.schema import ConfigError


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("interaction-consumer")
    except importlib.metadata.PackageNotFoundError:  # a checkout on the path, not installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    """The command line's parser: each subcommand's ``main`` is its ``main`` default."""
    parsed = argparse.ArgumentParser(
        prog="interaction-consumer",
        description="Track outbound dialer interactions and alert on stalled preview calls.",
    )
    parsed.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parsed.add_subparsers(dest="command", required=True)
    for command in (check, run, simulate, poll, replay):
        command.add_parser(commands)
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        status: int = args.main(args)
    except ConfigError as exc:
        print(f"interaction-consumer: configuration error: {exc}", file=sys.stderr)
        return exits.USAGE
    return status


if __name__ == "__main__":
    sys.exit(main())
