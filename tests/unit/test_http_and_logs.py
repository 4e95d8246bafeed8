"""The HTTP port's protocol handling, and log lines as JSON with their context."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from consumer.adapters import logs
from consumer.adapters.http import HttpServer, Response


def ask(request: bytes) -> bytes:
    """Send one raw request to a server with a single ``/hello`` route; return the answer."""

    async def exchange() -> bytes:
        def hello() -> Response:
            return 200, "text/plain", b"hi\n"

        server = HttpServer({"/hello": hello}, "127.0.0.1", 0)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            await server.stop()

    return asyncio.run(exchange())


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK"),
        (b"GET /hello?x=1 HTTP/1.1\r\n\r\n", b"200 OK"),
        (b"GET /nope HTTP/1.1\r\n\r\n", b"404 Not Found"),
        (b"POST /hello HTTP/1.1\r\n\r\n", b"405 Method Not Allowed"),
        (b"nonsense\r\n\r\n", b"400 Bad Request"),
    ],
)
def test_routes_and_errors(request_bytes: bytes, status: bytes) -> None:
    """Known GET routes answer; unknown paths, other methods and garbage get 4xx."""
    answer = ask(request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"Content-Length: " in answer


def test_hello_body_and_length() -> None:
    """The body is sent whole with its length."""
    head, _, body = ask(b"GET /hello HTTP/1.1\r\n\r\n").partition(b"\r\n\r\n")
    assert body == b"hi\n"
    assert b"Content-Length: 3" in head


def test_json_log_line_carries_context() -> None:
    """A log call's fields become keys of one JSON line beside ts, level and event."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("test.json")
    log.addHandler(handler)
    log.propagate = False
    log.warning("dead_letter", extra=logs.fields(topic="t", partition=2, offset=41))
    line = json.loads(stream.getvalue())
    assert line["event"] == "dead_letter"
    assert line["level"] == "WARNING"
    assert (line["topic"], line["partition"], line["offset"]) == ("t", 2, 41)
    assert line["ts"].endswith("Z")
