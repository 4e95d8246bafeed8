"""The HTTP port: routes, HEAD, /metrics as Prometheus asks for it, and bounds under abuse.

Each test runs a real server on loopback and speaks raw HTTP/1.1 to it over sockets, so
what is checked is what a scraper, a probe or an abuser sees on the wire.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import itertools
import json
import logging
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from consumer.commands.run import STALLED_LIMIT, STALLED_MAX_LIMIT, new_registry, routes
from consumer.daemon.engine_metrics import EngineMetrics
from consumer.daemon.loop import Daemon
from consumer.daemon.metrics import ConsumerMetrics
from consumer.observe.http import Handler, HttpServer, Query, Response
from consumer.settings.schema import HttpLimits
from consumer.sinks.alertmanager import AlertmanagerMetrics
from consumer.testing.rig import TOPIC, Rig, preview
from consumer.testing.rig import until as rig_until
from tests.machine import tool

# short enough to keep the tests quick, long enough for a loaded two-core machine
FAST = HttpLimits(request_timeout_seconds=1.0, max_connections=8)
BIG = 16_000_000  # more than loopback socket buffers hold: its answer stays in progress
GUARD = 20.0  # seconds before a test that waits for a signal fails instead of hanging


def hello(_: Query) -> Response:
    """A small answer."""
    return 200, "text/plain", b"hi\n"


def big(_: Query) -> Response:
    """An answer too big to sit unread in socket buffers."""
    return 200, "application/octet-stream", b"x" * BIG


def full_registry() -> CollectorRegistry:
    """The service's registry with every metric family it exports, idle."""
    registry = new_registry()
    EngineMetrics(registry, list, 200)
    ConsumerMetrics(registry, list)
    AlertmanagerMetrics(registry, ["http://am-0:9093"], lambda: 0, lambda: 0)
    return registry


@asynccontextmanager
async def serving(
    limits: HttpLimits = FAST,
    registry: CollectorRegistry | None = None,
    routes: Mapping[str, Handler] | None = None,
) -> AsyncIterator[HttpServer]:
    """A started server on loopback with ``/hello`` and ``/big``; stopped afterwards."""
    server = HttpServer(
        routes or {"/hello": hello, "/big": big},
        "127.0.0.1",
        0,
        registry=registry,
        limits=limits,
    )
    await server.start()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), GUARD)


class Answer:
    """One parsed HTTP answer."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}


async def exchange(port: int, request: bytes) -> Answer:
    """Send raw request bytes; read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return Answer(await asyncio.wait_for(reader.read(), GUARD))
    finally:
        writer.close()


def get(path: str, *headers: str, method: str = "GET") -> bytes:
    """A well-formed one-shot request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def closed_by_server(reader: asyncio.StreamReader) -> int:
    """Read until the server closes or resets the connection; the bytes read."""
    total = 0
    try:
        while chunk := await reader.read(65536):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


def rejected(registry: CollectorRegistry, reason: str) -> float:
    """How many connections or requests the port turned away for ``reason``."""
    return registry.get_sample_value("dialer_http_rejected_total", {"reason": reason}) or 0.0


async def until(registry: CollectorRegistry, reason: str, count: int) -> None:
    """Wait until ``count`` rejections for ``reason`` are counted."""
    async with asyncio.timeout(GUARD):
        while rejected(registry, reason) < count:
            await asyncio.sleep(0.05)


def no_trouble_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records at WARNING or above, or with a traceback: there should be none."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/hello"), 200),
        (get("/hello?x=1"), 200),
        (get("/nope"), 404),
        (get("/hello", method="POST"), 405),
        (b"nonsense\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
    ],
)
def test_routes_and_errors(request_bytes: bytes, status: int) -> None:
    """Known routes answer; unknown paths, other methods and garbage get 4xx with a length."""

    async def scenario() -> Answer:
        async with serving() as server:
            return await exchange(server.port, request_bytes)

    answer = asyncio.run(scenario())
    assert answer.status == status
    assert int(answer.headers["content-length"]) == len(answer.body)
    if status == 405:
        assert answer.headers["allow"] == "GET, HEAD"


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    """A scraper's kept-alive connection gets an answer to each of its requests."""

    async def scenario() -> list[bytes]:
        async with serving() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            bodies = []
            for _ in range(3):
                writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
                assert head.startswith(b"HTTP/1.1 200")
                bodies.append(await reader.readexactly(3))
            writer.close()
            return bodies

    assert asyncio.run(scenario()) == [b"hi\n"] * 3


@pytest.mark.parametrize("path", ["/hello", "/metrics"])
def test_head_answers_like_get_without_a_body(path: str) -> None:
    """HEAD gets GET's status, type and length, and no body."""

    async def scenario() -> tuple[Answer, Answer]:
        async with serving(registry=full_registry()) as server:
            head = await exchange(server.port, get(path, method="HEAD"))
            full = await exchange(server.port, get(path))
            return head, full

    head, full = asyncio.run(scenario())
    assert (head.status, full.status) == (200, 200)
    assert head.body == b""
    assert full.body
    assert head.headers["content-type"] == full.headers["content-type"]
    # a scrape's length varies with the process metrics of the moment; /hello's does not
    assert path == "/metrics" or head.headers["content-length"] == str(len(full.body))


def scrape(*headers: str) -> Answer:
    """One scrape of a server holding every metric family the service exports."""

    async def scenario() -> Answer:
        async with serving(registry=full_registry()) as server:
            return await exchange(server.port, get("/metrics", *headers))

    return asyncio.run(scenario())


def promtool_check(exposition: bytes) -> subprocess.CompletedProcess[bytes]:
    """``promtool check metrics`` on an exposition in the Prometheus text format."""
    return subprocess.run(
        [tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, check=False
    )


def test_plain_scrape_is_prometheus_text_that_promtool_accepts() -> None:
    """Without Accept or Accept-Encoding: text format 0.0.4, uncompressed, lint-clean."""
    answer = scrape()
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "content-encoding" not in answer.headers
    assert b"\n# TYPE dialer_http_rejected_total counter\n" in answer.body
    checked = promtool_check(answer.body)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_gzip_scrape_when_accepted_and_promtool_accepts_it() -> None:
    """Accept-Encoding: gzip gets a gzipped text exposition that promtool accepts."""
    answer = scrape("Accept-Encoding: gzip, identity")
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["vary"] == "Accept-Encoding"
    text = gzip.decompress(answer.body)
    assert b"\n# TYPE dialer_events_total counter\n" in text
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_openmetrics_when_asked() -> None:
    """Accept: application/openmetrics-text gets OpenMetrics, gzipped if also asked.

    promtool's ``check metrics`` reads only the Prometheus text format, so the
    OpenMetrics answer is checked with prometheus-client's strict OpenMetrics parser.
    """
    accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    answer = scrape(accept, "Accept-Encoding: gzip")
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    text = gzip.decompress(answer.body).decode()
    assert text.endswith("# EOF\n")
    # prometheus-client ships this parser without type hints
    families = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    names = {family.name for family in families}
    assert {"dialer_events", "dialer_http_rejected", "dialer_alertmanager_queue"} <= names


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431,
         "headers_too_large"),
        (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 400,
         "request_line_too_long"),
        (b"GET /hello HTTP/1.1\r\nHost: test\r\n" + b"".join(b"X-%d: a\r\n" % n for n in range(40))
         + b"\r\n", 431, "headers_too_large"),
    ],
)  # fmt: skip
def test_oversized_requests_get_a_status_not_a_traceback(
    request_bytes: bytes, status: int, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 100 kB header, request line, or too many headers: 431/400, counted, nothing logged."""
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()

    async def scenario() -> Answer:
        async with serving(registry=registry) as server:
            return await exchange(server.port, request_bytes)

    answer = asyncio.run(scenario())
    assert answer.status == status
    assert b"aaaa" not in answer.body  # the offending bytes are not echoed back
    assert rejected(registry, reason) == 1
    assert no_trouble_logged(caplog) == []


async def trickle(port: int, connected: asyncio.Queue[None]) -> int:
    """A slowloris: a request line, then a header line every 0.1 s until the server closes.

    Returns how many header lines it sent.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n")
        connected.put_nowait(None)
        for sent in itertools.count():
            try:
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    return sent
            except TimeoutError:
                writer.write(b"X-Line-%d: still here\r\n" % sent)
            except ConnectionResetError:
                return sent
        raise AssertionError("unreachable")  # itertools.count never ends
    finally:
        writer.close()


def test_slow_header_flood_is_cut_off_while_healthz_and_metrics_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """20 slowloris connections, cap 8: each evicted or timed out; routes answer meanwhile."""
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    flood = 20

    async def scenario() -> tuple[list[int], list[int]]:
        async with serving(registry=registry) as server:
            connected: asyncio.Queue[None] = asyncio.Queue()
            slow = [asyncio.create_task(trickle(server.port, connected)) for _ in range(flood)]
            for _ in range(flood):
                await asyncio.wait_for(connected.get(), GUARD)
            await asyncio.sleep(0)  # let the server see the last one
            assert registry.get_sample_value("dialer_http_connections") == FAST.max_connections
            statuses = []
            for path in ("/hello", "/metrics", "/hello", "/metrics"):
                statuses.append((await exchange(server.port, get(path))).status)
                open_now = registry.get_sample_value("dialer_http_connections")
                assert open_now is not None
                assert open_now <= FAST.max_connections
            lines = await asyncio.wait_for(asyncio.gather(*slow), GUARD)
            return statuses, lines

    statuses, lines = asyncio.run(scenario())
    assert statuses == [200, 200, 200, 200]
    assert len(lines) == flood
    assert rejected(registry, "evicted") + rejected(registry, "deadline") == flood
    assert rejected(registry, "deadline") >= 1
    assert no_trouble_logged(caplog) == []


def test_deadline_counts_from_accept_not_from_each_header_line() -> None:
    """A client sending a header line every 0.1 s is closed by a 1 s deadline all the same."""
    registry = CollectorRegistry()

    async def scenario() -> int:
        async with serving(registry=registry) as server:
            return await asyncio.wait_for(trickle(server.port, asyncio.Queue()), GUARD)

    lines = asyncio.run(scenario())
    assert lines >= 1  # it did trickle before being cut off
    assert rejected(registry, "deadline") == 1


def small_window_socket() -> socket.socket:
    """A client socket with a tiny receive buffer: it can take little of an answer unread."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def non_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that asks for ``/big`` and reads only the status line of it."""
    sock = small_window_socket()
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
    assert (await asyncio.wait_for(reader.readexactly(12), GUARD)) == b"HTTP/1.1 200"
    return reader, writer


def test_cap_refuses_newcomers_only_when_all_are_being_answered() -> None:
    """Every slot answering a non-reader: a newcomer is closed at once; the deadline frees them."""
    registry = CollectorRegistry()
    limits = HttpLimits(request_timeout_seconds=1.0, max_connections=2)

    async def scenario() -> tuple[Answer | None, list[int]]:
        async with serving(limits, registry) as server:
            stuck = [await non_reader(server.port) for _ in range(limits.max_connections)]
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(get("/hello"))
            refused = await asyncio.wait_for(reader.read(), GUARD)
            writer.close()
            # reading earlier would take the answers in time; the point is not to read
            await until(registry, "deadline", len(stuck))
            got = [await asyncio.wait_for(closed_by_server(r), GUARD) for r, _ in stuck]
            for _, w in stuck:
                w.close()
            return (Answer(refused) if refused else None), got

    refused, got = asyncio.run(scenario())
    assert refused is None  # closed without an answer
    assert rejected(registry, "refused") == 1
    assert rejected(registry, "deadline") == limits.max_connections
    assert all(n < BIG for n in got)


def test_stop_closes_every_connection_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    """stop() closes slow, idle and non-reading connections, with no error logged or raised."""
    caplog.set_level(logging.DEBUG)
    loop_errors: list[dict[str, Any]] = []
    limits = HttpLimits(request_timeout_seconds=60.0, max_connections=16)

    async def scenario() -> list[int]:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        server = HttpServer({"/hello": hello, "/big": big}, "127.0.0.1", 0, limits=limits)
        await server.start()
        clients = []
        for _ in range(3):  # halfway through a request head
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n")
            clients.append((reader, writer))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")  # then idle, kept alive
        await asyncio.wait_for(reader.readuntil(b"hi\n"), GUARD)
        clients.append((reader, writer))
        clients.append(await non_reader(server.port))
        await asyncio.sleep(0)
        await asyncio.wait_for(server.stop(), GUARD)
        got = [await asyncio.wait_for(closed_by_server(r), GUARD) for r, _ in clients]
        for _, w in clients:
            w.close()
        return got

    got = asyncio.run(scenario())
    gc.collect()  # an unclosed transport would warn here, and warnings are errors
    assert len(got) == 5
    assert loop_errors == []
    assert no_trouble_logged(caplog) == []


def test_a_stopped_server_starts_again_on_the_same_registry() -> None:
    """stop() then start() serves again: the port's metrics are registered once, not per start."""
    registry = CollectorRegistry()

    async def scenario() -> list[int]:
        server = HttpServer({"/hello": hello}, "127.0.0.1", 0, registry=registry, limits=FAST)
        statuses = []
        for _ in range(2):
            await server.start()
            statuses.append((await exchange(server.port, get("/hello"))).status)
            await server.stop()
        return statuses

    assert asyncio.run(scenario()) == [200, 200]
    assert registry.get_sample_value("dialer_http_connections") == 0


async def stalled_daemon(count: int) -> tuple[Daemon, asyncio.Task[None]]:
    """A daemon on fakes running with ``count`` previews stalled, the first the oldest."""
    rig = Rig()
    for n in range(count):
        rig.send(preview(f"p{n}", previewing=n), key=f"p{n}", at=n)
    daemon = rig.daemon()
    task = asyncio.create_task(daemon.run())
    await rig_until(lambda: rig.consumer.committed.get((TOPIC, 0)) == count)
    rig.clock.advance(count + 10)
    await rig_until(lambda: daemon.step.stalled_count() == count)
    return daemon, task


def stalled_ids(answer: Answer) -> list[str]:
    """The interaction ids a /stalled answer lists, in order."""
    return [a["interactionId"] for a in json.loads(answer.body)["stalled"]]


def test_stalled_is_bounded_by_limit_in_either_order_with_the_total() -> None:
    """/stalled lists at most ``limit`` (default 1000), oldest first or newest, with the total."""

    async def scenario() -> None:
        daemon, task = await stalled_daemon(5)
        async with serving(routes=routes(daemon)) as server:
            whole = await exchange(server.port, get("/stalled"))
            first = await exchange(server.port, get("/stalled?limit=2"))
            last = await exchange(server.port, get("/stalled?limit=2&order=newest"))
        daemon.stop()
        await asyncio.wait_for(task, GUARD)
        assert json.loads(whole.body) | {"stalled": None} == {
            "total": 5,
            "limit": STALLED_LIMIT,
            "order": "oldest",
            "stalled": None,
        }
        assert stalled_ids(whole) == ["p0", "p1", "p2", "p3", "p4"]
        assert (first.status, json.loads(first.body)["total"]) == (200, 5)
        assert stalled_ids(first) == ["p0", "p1"]
        assert stalled_ids(last) == ["p4", "p3"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        f"limit={STALLED_MAX_LIMIT + 1}",
        "limit=ten",
        "limit=-1",
        "limit=%C2%B2",  # a superscript two: a digit to str.isdigit, not to int
        "limit=" + "9" * 5000,  # more digits than int() converts
        "order=up",
    ],
    ids=["zero", "over-cap", "word", "negative", "superscript", "huge", "order"],
)
def test_stalled_refuses_a_limit_beyond_the_cap_or_an_unknown_order(query: str) -> None:
    """/stalled answers 400 naming the parameter for a limit outside 1..cap or another order."""

    async def scenario() -> Answer:
        daemon, task = await stalled_daemon(1)
        async with serving(routes=routes(daemon)) as server:
            answer = await exchange(server.port, get(f"/stalled?{query}"))
        daemon.stop()
        await asyncio.wait_for(task, GUARD)
        return answer

    answer = asyncio.run(scenario())
    assert answer.status == 400
    assert answer.body.startswith(query.split("=")[0].encode())
