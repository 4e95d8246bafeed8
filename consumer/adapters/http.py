"""The one HTTP port: ``/metrics``, ``/healthz``, ``/readyz``, ``/stalled``.

A deliberately small HTTP/1.1 server on asyncio streams, in the daemon's own event
loop: a scrape reads the trackers in the same thread that mutates them, so no lock is
needed, and an answer at all proves the loop is alive. GET only, one request per
connection, no bodies in requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus

from consumer.adapters.logs import fields

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Handler = Callable[[], Response]

_MAX_REQUEST_LINE = 8192


class HttpServer:
    """Serves a fixed set of GET routes."""

    def __init__(self, routes: Mapping[str, Handler], host: str, port: int) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; ``port`` 0 picks a free port, readable from :attr:`port` afterwards."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("http_listening", extra=fields(host=self.host, port=self.port))

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await self._answer(reader)
            reason = HTTPStatus(status).phrase
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> Response:
        line = await asyncio.wait_for(reader.readline(), timeout=10)
        if len(line) > _MAX_REQUEST_LINE:
            return _text(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long\n")
        while (await asyncio.wait_for(reader.readline(), timeout=10)) not in (b"\r\n", b"\n", b""):
            pass  # headers are not needed
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            return _text(HTTPStatus.BAD_REQUEST, "bad request\n")
        method, target, _ = parts
        handler = self.routes.get(target.split("?", 1)[0])
        if handler is None:
            return _text(HTTPStatus.NOT_FOUND, f"not found; try {', '.join(self.routes)}\n")
        if method != "GET":
            return _text(HTTPStatus.METHOD_NOT_ALLOWED, "GET only\n")
        return handler()


def _text(status: HTTPStatus, text: str) -> Response:
    return status.value, "text/plain; charset=utf-8", text.encode()
