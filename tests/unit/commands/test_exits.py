"""One exit-status convention: every command reports the same failure with the same status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from consumer.commands import exits
from consumer.commands.cli import main

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once


def test_poll_without_a_reachable_broker_exits_as_run_does() -> None:
    """Poll exits NOT_CONNECTED (3, as run) when no broker answers at start, naming the setting."""
    env = {
        **os.environ,
        "GENESYS_CLIENT_ID": "client",
        "GENESYS_CLIENT_SECRET": "secret",
        "INTERACTION_CONSUMER_LOG_FORMAT": "json",
    }
    argv = ["poll", "--api-base", "http://127.0.0.1:9", "--bootstrap-servers", UNREACHABLE]
    done = subprocess.run(
        [sys.executable, "-m", "consumer", *argv, "--http-port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    said = done.stdout + done.stderr  # the log goes to stdout
    assert done.returncode == exits.NOT_CONNECTED == 3, said
    assert "broker_unavailable" in said
    assert "kafka.bootstrap_servers" in said


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--stall-after", "nonsense=5"],
        ["replay", "--stall-after", "placed=nan", "-"],
        ["check-config", "--for", "poll"],
    ],
)
def test_every_command_refuses_a_bad_setting_or_flag_with_usage(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad flag or a setting a command lacks exits USAGE (2) whichever command it is."""
    for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exited:
        sys.exit(main(argv))
    assert exited.value.code == exits.USAGE == 2
