"""What the tests need of the machine, shared by unit and integration tests: tools, ports."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def tool(name: str) -> str:
    """The path of a system tool; missing is a failure under CI, a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup-tools installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
