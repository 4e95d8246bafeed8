"""Logs on stdout: one JSON object per line (or plain text for people), context bound.

Log calls name an event and pass context as keyword fields through ``extra``::

    log.warning("dead_letter", extra=fields(topic=t, partition=p, offset=o, reason=r))

Fields are rendered as JSON keys; nothing in this project passes a phone number or a
contact name in them, and secrets are :class:`~consumer.config.Secret`, which renders
as ``***``.
"""

from __future__ import annotations

import logging
import sys
import time
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


def configure(level: str, fmt: str) -> None:
    """Send all logs to stdout in the chosen format and level."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every retry at ERROR while a broker is away; we report that ourselves
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
