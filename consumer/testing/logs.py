"""Log lines captured as the events they are, in the manner of structlog's ``capture_logs``.

A test asks what the service said (``event``, ``level``, ``logger`` and the fields) rather
than matching text: each captured event is exactly what the JSON log line would hold.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from consumer.observe.logs import JsonFormatter


class _Capture(logging.Handler):
    """Keeps every record it is handed, as the JSON formatter's object."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.events: list[dict[str, Any]] = []
        self._formatter = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record as its JSON line's object."""
        self.events.append(json.loads(self._formatter.format(record)))


@contextlib.contextmanager
def capture_logs(
    level: int = logging.DEBUG, logger: str = "consumer"
) -> Iterator[list[dict[str, Any]]]:
    """Every event ``logger`` (and those below it) logs at ``level`` or above, while inside.

    The list fills as the events are logged; the logger's own level is lowered to ``level``
    meanwhile and put back after.
    """
    target = logging.getLogger(logger)
    handler = _Capture(level)
    before = target.level
    target.addHandler(handler)
    target.setLevel(level)
    try:
        yield handler.events
    finally:
        target.removeHandler(handler)
        target.setLevel(before)


def events_named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The captured events called ``name``, in order."""
    return [event for event in events if event["event"] == name]
