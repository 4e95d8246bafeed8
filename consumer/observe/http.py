"""The one HTTP port: ``/metrics``, ``/healthz``, ``/readyz``, ``/stalled``.

aiohttp's low-level server (no application, no router: a handful of fixed routes) in
the daemon's own event loop: a scrape reads the trackers in the same thread that
mutates them, so no lock is needed, and an answer at all proves the loop is alive.
Routes answer ``GET`` and ``HEAD`` (the same head, no body); a route is handed the
query parameters. ``/metrics`` is served
from the registry the server is given, in the format ``Accept`` asks for (OpenMetrics
or Prometheus text) and gzipped when ``Accept-Encoding`` allows, as prometheus-client's
own exposition does.

The port is open to anyone on the pod network, so it is bounded (``HttpLimits``):

* aiohttp limits the request line, each header line and the number of headers; past
  them we answer 400 (request line) or 431 (headers) with a fixed text, count it, and
  log no traceback (aiohttp's own handler logs each one at ERROR with a traceback and
  echoes the first 100 bytes of the offending line, which may carry a credential).
* aiohttp has no deadline for a whole request: its keep-alive timer is for idle
  connections, and nothing stops a client that sends one header line every few
  seconds. :class:`_Connection`, its protocol subclassed, arms one timer when a request
  starts (accept, or a kept-alive connection's next first byte) and closes the
  connection if the answer has not been handed over by then; trickled bytes do not
  re-arm it. The same timer bounds a client that never reads its answer.
* aiohttp has no cap on open connections: each one is a file descriptor, and the
  broker connections need those too. :class:`_Server`, its protocol factory, admits a
  connection only under the cap. At the cap it closes the connection that has waited
  longest for a request (slow senders and idle keep-alives go first) to make room, so a
  flood of slow connections cannot keep a probe of ``/healthz`` out; only when every
  open connection is being answered is the new one refused, at once.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final, cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import choose_encoder, gzip_accepted

from consumer.observe.collectors import per_value
from consumer.observe.logs import fields
from consumer.settings.schema import HttpLimits

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Query = Mapping[str, str]  # the request's query parameters (the first of each name)
Handler = Callable[[Query], Response]

_METRICS: Final = "/metrics"
_METHODS: Final = ("GET", "HEAD")
_TEXT: Final = "text/plain; charset=utf-8"
# how long stop() lets an answer in progress finish before cutting it
_SHUTDOWN_SECONDS: Final = 1.0
# what dialer_http_rejected counts, by reason
HTTP_REJECTIONS: Final = (
    "deadline",  # the request (and its answer) took longer than http.request_timeout_seconds
    "evicted",  # closed at the connection cap to make room for a new connection
    "refused",  # a new connection at the cap, every open one busy being answered
    "request_line_too_long",
    "headers_too_large",
    "bad_request",
)


class HttpMetrics:
    """The HTTP port: open connections, and connections or requests it turned away."""

    def __init__(self, registry: CollectorRegistry, connections: Callable[[], int]) -> None:
        self.rejected = per_value(
            "dialer_http_rejected",
            "Connections or requests the HTTP port closed or refused, by reason.",
            "reason",
            HTTP_REJECTIONS,
            registry,
        )
        Gauge(
            "dialer_http_connections", "Open connections to the HTTP port.", registry=registry
        ).set_function(connections)


class HttpServer:
    """Serves a fixed set of routes, and ``/metrics`` from ``registry`` when given."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str,
        port: int,
        *,
        registry: CollectorRegistry | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.limits = limits or HttpLimits()
        self._registry = registry
        self._server: _Server | None = None
        # without a registry the counts go nowhere visible, but the code path is the same
        self.metrics = HttpMetrics(registry or CollectorRegistry(), self._open_connections)
        self._runner: web.ServerRunner | None = None
        paths = [*self.routes, *([_METRICS] if registry is not None else [])]
        self._not_found = f"not found; try {', '.join(paths)}\n".encode()

    async def start(self) -> None:
        """Listen; ``port`` 0 picks a free port, readable from :attr:`port` afterwards."""
        self._server = _Server(self._dispatch, self.limits, self.metrics)
        self._runner = web.ServerRunner(self._server, shutdown_timeout=_SHUTDOWN_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("http_listening", extra=fields(host=self.host, port=self.port))

    async def stop(self) -> None:
        """Stop listening, close every connection, and return once they are all closed."""
        if self._runner is None or self._server is None:
            return
        await self._runner.cleanup()
        await self._server.closed()
        self._runner = self._server = None

    def _open_connections(self) -> int:
        return 0 if self._server is None else self._server.open_connections

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        if isinstance(connection, _Connection):
            connection.answering()
        path = request.path
        scrape = path == _METRICS and self._registry is not None and path not in self.routes
        if not scrape and path not in self.routes:
            return _response(HTTPStatus.NOT_FOUND, _TEXT, self._not_found)
        if request.method not in _METHODS:
            answer = _response(HTTPStatus.METHOD_NOT_ALLOWED, _TEXT, b"GET or HEAD only\n")
            answer.headers[hdrs.ALLOW] = ", ".join(_METHODS)
            return answer
        try:
            return self._scrape(request) if scrape else _response(*self.routes[path](request.query))
        except Exception:
            # a bug of ours, not the client's: say so with the traceback, answer 500
            log.exception("http_handler_failed", extra=fields(path=path))
            return _response(HTTPStatus.INTERNAL_SERVER_ERROR, _TEXT, b"internal error\n")

    def _scrape(self, request: web.BaseRequest) -> web.Response:
        """The exposition as prometheus-client's own ``_bake_output`` makes it."""
        assert self._registry is not None  # only routed here with a registry
        encoder, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
        body = encoder(self._registry)
        answer = _response(HTTPStatus.OK, content_type, body)
        answer.headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
        if gzip_accepted(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
            answer.body = gzip.compress(body)
            answer.headers[hdrs.CONTENT_ENCODING] = "gzip"
        return answer


def _response(status: int, content_type: str, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, headers={hdrs.CONTENT_TYPE: content_type})


class _Server(web.Server):
    """aiohttp's protocol factory, plus the cap on open connections (see the module doc)."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Any],
        limits: HttpLimits,
        metrics: HttpMetrics,
    ) -> None:
        super().__init__(
            handler,
            keepalive_timeout=limits.keepalive_seconds,
            max_line_size=limits.max_request_line_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            lingering_time=0,  # never wait to read a body nobody asked for: GET only
            access_log=None,
            logger=log,
        )
        self.limits = limits
        self._open: dict[_Connection, None] = {}  # admitted and not closed by us
        self._alive: set[_Connection] = set()  # every transport not yet closed
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.metrics = metrics

    @property
    def open_connections(self) -> int:
        """Connections counted under the cap."""
        return len(self._open)

    def __call__(self) -> web.RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)

    def admit(self, connection: _Connection) -> bool:
        """Whether ``connection`` may stay open; at the cap, make room or refuse it."""
        self._alive.add(connection)
        self._all_closed.clear()
        if len(self._open) >= self.limits.max_connections:
            waiting = [c for c in self._open if c.waiting_since is not None]
            if not waiting:
                self.reject(connection, "refused")
                return False
            min(waiting, key=lambda c: c.waiting_since or 0.0).shut("evicted")
        self._open[connection] = None
        return True

    def reject(self, connection: _Connection, reason: str) -> None:
        """Count why ``connection`` is closed and stop counting it under the cap."""
        self.count(reason)
        self._open.pop(connection, None)

    def count(self, reason: str) -> None:
        """Count a connection or request turned away (DEBUG only: a flood must not flood logs)."""
        self.metrics.rejected[reason].inc()
        log.debug("http_rejected", extra=fields(reason=reason))

    def lost(self, connection: _Connection) -> None:
        """``connection``'s transport is closed."""
        self._open.pop(connection, None)
        self._alive.discard(connection)
        if not self._alive:
            self._all_closed.set()

    async def closed(self) -> None:
        """Close what :meth:`shutdown` left open (answers still unread), and wait for all."""
        for connection in list(self._alive):
            connection.abort()
        await self._all_closed.wait()


class _Connection(web.RequestHandler):
    """aiohttp's protocol for one connection, plus the whole-request deadline.

    A request is *reading* from accept (or a kept-alive connection's next first byte)
    until its head is parsed, then *answering* until the answer is handed to the
    transport, then the connection is *idle*. One timer spans reading and answering.
    ``waiting_since`` is set while reading or idle: such a connection may be evicted.
    """

    def __init__(self, server: _Server, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._server = server  # aiohttp drops its own reference when the connection ends
        self.waiting_since: float | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._admitted = False
        self._transport: asyncio.Transport | None = None  # aiohttp forgets it on close
        # where the request line ends, to tell a long request line from a long header
        self._head_bytes = 0
        self._line_bytes: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._server.admit(self):
            transport.close()
            return
        self._admitted = True
        self._transport = cast(asyncio.Transport, transport)
        # pause at any unsent byte: aiohttp then waits for an answer to leave the transport
        # before it is done with it, so the deadline covers a client that does not read
        self._transport.set_write_buffer_limits(high=0)
        super().connection_made(transport)
        self._begin()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._server.lost(self)
        if self._admitted:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.waiting_since is not None:
            self._begin()  # the first byte of the next request on a kept-alive connection
        if self._line_bytes is None:
            end = data.find(b"\n")
            if end >= 0:
                self._line_bytes = self._head_bytes + end
        self._head_bytes += len(data)
        super().data_received(data)

    def answering(self) -> None:
        """The request's head is parsed: no longer evictable, still under its deadline."""
        if self._deadline is None:
            self._begin()  # a pipelined request, read while the previous one was answered
        self.waiting_since = None

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._disarm()
            self.waiting_since = self._loop.time()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # replaces aiohttp's, which logs every malformed request with a traceback
        if isinstance(exc, HttpProcessingError):
            reason, status, text = self._rejection(exc)
            self._server.count(reason)
        else:
            log.error("http_request_failed", exc_info=exc)
            status, text = HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n"
        answer = web.Response(status=status, text=text)
        answer.force_close()
        return answer

    def _rejection(self, exc: HttpProcessingError) -> tuple[str, int, str]:
        """Reason, status and text for a request aiohttp could not parse."""
        if isinstance(exc, LineTooLong):
            line = self._line_bytes
            if line is None or line > self._server.limits.max_request_line_bytes:
                return "request_line_too_long", 400, "request line too long\n"
            return "headers_too_large", 431, "header line too long\n"
        if "too many headers" in exc.message.lower():  # aiohttp has no type of its own for it
            return "headers_too_large", 431, "too many headers\n"
        return "bad_request", 400, "bad request\n"

    def _begin(self) -> None:
        now = self._loop.time()
        self.waiting_since = now
        self._head_bytes, self._line_bytes = 0, None
        timeout = self._server.limits.request_timeout_seconds
        self._deadline = self._loop.call_at(now + timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        self.shut("deadline")

    def shut(self, reason: str) -> None:
        """Close this connection now, counted under ``reason``."""
        self._disarm()
        self.waiting_since = None
        self._server.reject(self, reason)
        self.abort()

    def abort(self) -> None:
        """Close at once, dropping unsent bytes.

        aiohttp's ``force_close`` closes the transport gracefully, which waits for the
        client to read whatever answer is buffered: a client that never reads would
        keep its connection (and file descriptor) for ever.
        """
        self.force_close()
        if self._transport is not None:
            self._transport.abort()
