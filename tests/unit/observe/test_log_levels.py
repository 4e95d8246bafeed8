"""aiokafka's messages about conditions it recovers from are not ERROR; real errors still are."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiokafka
import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from consumer.observe import logs


def aiokafka_error_templates() -> set[str]:
    """The message templates the installed aiokafka passes to ``log.error``/``log.exception``."""
    templates = set()
    for path in Path(aiokafka.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("error", "exception")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                templates.add(node.args[0].value)
    return templates


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Logging set up as the daemon does (JSON, INFO) into a buffer; restored afterwards."""
    root, library = logging.getLogger(), logging.getLogger("aiokafka")
    saved = (root.handlers[:], root.level, library.level)
    logs.configure("INFO", "json")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        library.setLevel(saved[2])


def lines(output: io.StringIO) -> list[dict[str, str]]:
    """The JSON log lines written so far."""
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_every_demoted_message_is_one_aiokafka_logs_at_error() -> None:
    """Each demoted template is verbatim what the installed aiokafka logs at ERROR."""
    missing = set(logs._AIOKAFKA_TRANSIENT) - aiokafka_error_templates()
    assert not missing, f"aiokafka no longer logs these (update the table): {missing}"


def test_coordinator_not_available_is_info_and_hidden_at_info(output: io.StringIO) -> None:
    """The coordinator lookup retried on every new cluster becomes INFO, below aiokafka's level."""
    log = logging.getLogger("aiokafka.consumer.group_coordinator")
    log.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    assert lines(output) == []


def test_coordinator_not_available_shows_as_info_to_whoever_asks(output: io.StringIO) -> None:
    """With aiokafka's INFO asked for, the same message shows, at INFO."""
    logging.getLogger("aiokafka").setLevel(logging.INFO)
    log = logging.getLogger("aiokafka.consumer.group_coordinator")
    log.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    (line,) = lines(output)
    assert line["level"] == "INFO"
    assert "GroupCoordinatorNotAvailableError" in line["event"]


def test_unreachable_server_is_a_warning(output: io.StringIO) -> None:
    """A bootstrap server aiokafka could not reach (it tries the next) is a WARNING."""
    logging.getLogger("aiokafka").error('Unable connect to "%s:%s": %s', "b1", 9092, "refused")
    (line,) = lines(output)
    assert line["level"] == "WARNING"
    assert line["event"] == 'Unable connect to "b1:9092": refused'


def test_unknown_aiokafka_errors_stay_errors(output: io.StringIO) -> None:
    """An aiokafka ERROR not known to be transient, and our own ERRORs, are untouched."""
    logging.getLogger("aiokafka.consumer.fetcher").error("Unexpected error in fetcher routine")
    logging.getLogger("consumer.commands.run").error("authentication_failed")
    assert [line["level"] for line in lines(output)] == ["ERROR", "ERROR"]


def test_a_repeated_transient_message_is_said_once_a_minute() -> None:
    """Retries while a broker is away repeat a message: one WARNING a minute, the rest dropped."""
    now = [0.0]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.LibraryLevels(repeat_seconds=60, clock=lambda: now[0]))
    log = logging.getLogger("aiokafka.repeats")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.WARNING)  # as the daemon sets aiokafka's
    try:
        for moment in (0.0, 1.0, 30.0, 61.0):
            now[0] = moment
            log.error("Unable connect to node with id %s: %s", moment, "refused")
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    said = lines(buffer)
    assert [line["level"] for line in said] == ["WARNING", "WARNING"]
    assert [line["event"] for line in said] == [
        "Unable connect to node with id 0.0: refused",
        "Unable connect to node with id 61.0: refused",
    ]
