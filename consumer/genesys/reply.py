"""A Platform API reply read without trusting it: body capped, durations bounded, decoded.

What the network says is bounded before anything waits on it or keeps it: a body to
:data:`MAX_BODY`, a ``Retry-After`` (seconds or a date) to :data:`MAX_PAUSE` (the budget's
window: a minute), ``inf``, ``1e999`` and ``nan`` included. A body that is not the
documented JSON is a :class:`~consumer.errors.BadResponseError`.
"""

from __future__ import annotations

import email.utils
from typing import Final, TypeVar

import aiohttp
import msgspec

from consumer.errors import BadResponseError

_T = TypeVar("_T")

MAX_BODY: Final = 64 * 1024 * 1024  # a campaign of thousands of interactions is a few MB
MAX_PAUSE: Final = 60.0  # the longest pause an answer may ask for: the budget's window


class Reply(msgspec.Struct):
    """What one request got back: status, body, and the pause it asked for, if any."""

    status: int
    body: bytes
    retry_after: float | None


def bounded(seconds: float, most: float) -> float:
    """``seconds`` from the network within 0 and ``most`` (``nan`` is 0, ``inf`` is ``most``)."""
    return min(max(seconds, 0.0), most) if seconds == seconds else 0.0


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date).

    Clamped to :data:`MAX_PAUSE`: ``float()`` accepts ``inf`` and ``1e999``.
    """
    if not value:
        return None
    try:
        return bounded(float(value), MAX_PAUSE)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return bounded(moment.timestamp() - now, MAX_PAUSE)


async def read_capped(response: aiohttp.ClientResponse, endpoint: str) -> bytes:
    """The body of ``response``; :class:`BadResponseError` beyond :data:`MAX_BODY` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY:
            raise BadResponseError(f"{endpoint}: answer larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, type_: type[_T], endpoint: str) -> _T:
    """``body`` decoded as ``type_``; :class:`BadResponseError` when it is not that."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise BadResponseError(f"{endpoint}: unexpected answer ({exc})") from None


def oauth_error(body: bytes) -> str:
    """`` invalid_client``-style detail from an OAuth error answer, if it has one."""
    try:
        error = msgspec.json.decode(body, type=dict[str, object]).get("error")
    except msgspec.DecodeError:
        return ""
    return f" {error}" if isinstance(error, str) and error.isidentifier() else ""
