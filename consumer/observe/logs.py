"""Logs on stdout: one JSON object per line (or plain text for people), context bound.

Log calls name an event and pass context as keyword fields through ``extra``::

    log.warning("dead_letter", extra=fields(topic=t, partition=p, offset=o, reason=r))

Fields are rendered as JSON keys; nothing in this project passes a phone number or a
contact name in them, and secrets are :class:`~consumer.settings.secret.Secret`, which renders
as ``***``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

_FIELDS: Final = "fields"
_encoder: Final = msgspec.json.Encoder(decimal_format="number")


def fields(**context: Any) -> dict[str, Any]:
    """Context for one log call, to pass as ``extra=``."""
    return {_FIELDS: context}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    context: dict[str, Any] = getattr(record, _FIELDS, {})
    return context


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a JSON line."""
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


class TextFormatter(logging.Formatter):
    """``time level event key=value ...`` for a person watching a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a line of text."""
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        pairs = " ".join(f"{k}={v}" for k, v in _context(record).items())
        text = f"{stamp} {record.levelname:<7} {record.getMessage()} {pairs}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


# What aiokafka (0.14) logs at ERROR about a step it retries by itself, by message
# template, and the level that step means to an operator. The daemon reports what lasts in
# its own words: broker_unavailable, authentication_failed (ERROR, exit 3), /readyz.
_AIOKAFKA_TRANSIENT: Final = {
    # the group coordinator is looked up again; usual while a new cluster makes its offsets topic
    "Group Coordinator Request failed: %s": logging.INFO,
    # one bootstrap server or broker could not be reached: the next one is tried, then again
    'Unable connect to "%s:%s": %s': logging.WARNING,
    "Unable connect to node with id %s: %s": logging.WARNING,
    "Unable to update metadata from %s": logging.WARNING,
    # a fetch, an offset lookup or a heartbeat failed: retried, the coordinator looked up again
    "Failed fetch messages from %s: %s": logging.WARNING,
    "Failed fetch offsets from %s: %s": logging.WARNING,
    "Heartbeat send request failed: %s. Will retry.": logging.WARNING,
    "Heartbeat session expired - marking coordinator dead": logging.WARNING,
    "Error sending %s to node %s [%s] -- marking coordinator dead": logging.WARNING,
    # a commit met a rebalance: the group is joined again and the daemon commits again
    "OffsetCommit failed for group %s due to group error (%s), will rejoin": logging.WARNING,
}


class LibraryLevels(logging.Filter):
    """Give aiokafka's messages about transient conditions the level they mean to us.

    Only the known messages are demoted; anything else aiokafka logs at ERROR stays an
    ERROR. While a broker is away aiokafka repeats them on every retry (thousands a
    minute), so each is said once per ``repeat_seconds`` and its repeats go to DEBUG. A
    demoted message is dropped when its new level is below its logger's.
    """

    def __init__(
        self, repeat_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._repeat_seconds = repeat_seconds
        self._clock = clock
        self._said: dict[str, float] = {}  # template -> when it was last given its level

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a known transient aiokafka message; keep the record unless now too low."""
        if not record.name.startswith("aiokafka") or record.levelno < logging.ERROR:
            return True
        template = str(record.msg)
        level = _AIOKAFKA_TRANSIENT.get(template)
        if level is None:
            return True
        now = self._clock()
        if now - self._said.get(template, -math.inf) < self._repeat_seconds:
            level = logging.DEBUG
        else:
            self._said[template] = now
        record.levelno, record.levelname = level, logging.getLevelName(level)
        return logging.getLogger(record.name).isEnabledFor(level)


def configure(level: str, fmt: str) -> None:
    """Send all logs to stdout in the chosen format and level."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LibraryLevels())
    # Neither format shows where a call came from, nor which thread or process made it:
    # not collecting them (the logging HOWTO's "Optimization") takes a third off a line,
    # which counts for the alert lines of a busy batch.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka's INFO is its group protocol step by step; the daemon logs what matters of it
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
