"""Connecting: an aiokafka client started and stopped once, and a failed start diagnosed."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError

from consumer.errors import AuthenticationError, BrokerError
from consumer.kafka.errors import reason, translate
from consumer.kafka.options import client_options
from consumer.settings.schema import KafkaSettings


async def _connect_once(settings: KafkaSettings, address: str) -> BaseException | None:
    """Why one direct connection to ``address`` fails, or ``None`` when it succeeds."""
    host, colon, port = address.rpartition(":")
    options = client_options(settings)
    del options["bootstrap_servers"]
    try:
        conn = await create_conn(
            host.strip("[]") if colon else address,
            int(port) if colon else 9092,  # aiokafka's default port, as for the bootstrap
            request_timeout_ms=10_000,
            **options,
        )
    except (KafkaError, OSError, ValueError) as cause:  # ssl.SSLError and timeouts are OSErrors
        return cause
    conn.close()
    return None


async def diagnose(settings: KafkaSettings, exc: BaseException, doing: str) -> BrokerError:
    """The project's error for a failure to reach the cluster at all.

    aiokafka logs why each bootstrap server failed and raises a generic connection error;
    one direct connection to each server finds the cause again. A certificate we refuse
    or a login the broker refuses is final (:class:`AuthenticationError`); servers that
    cannot be reached are a cluster away, worth retrying.
    """
    if not isinstance(exc, KafkaConnectionError):
        return translate(exc, doing, settings)
    addresses = [a.strip() for a in settings.bootstrap_servers.split(",") if a.strip()]
    causes = await asyncio.gather(*(_connect_once(settings, a) for a in addresses))
    failed = [(a, cause) for a, cause in zip(addresses, causes, strict=True) if cause is not None]
    for address, cause in failed:
        error = translate(cause, doing, settings, address)
        if isinstance(error, AuthenticationError):
            return error
    if len(failed) < len(addresses):  # a server answers now: it was away for a moment
        return translate(exc, doing, settings)
    reasons = "; ".join(f"{address}: {reason(cause)}" for address, cause in failed)
    hint = ""
    hung_up = (ConnectionResetError, ssl.SSLEOFError, KafkaConnectionError)
    if any(isinstance(cause, hung_up) for _, cause in failed):
        # a listener that speaks another protocol hangs up on the first bytes
        hint = (
            f"; a listener that hangs up may speak another protocol than "
            f"kafka.security_protocol ({settings.security_protocol})"
        )
    return BrokerError(f"{doing}: no broker reachable at kafka.bootstrap_servers ({reasons}){hint}")


class Client:
    """Base of the group consumer and the producer: the aiokafka client exists from start on.

    A client that never started is never built, so it never needs closing (aiokafka logs
    an unclosed one at ERROR); a TLS file that cannot load stops the construction.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._options = client_options(settings)
        self._started: Any = None  # the aiokafka consumer or producer, once started

    @property
    def _client(self) -> Any:
        if self._started is None:
            raise RuntimeError(f"{type(self).__name__} used before start()")
        return self._started

    async def _start(self, client: Any, doing: str) -> None:
        """Start ``client`` and keep it; closed again, and the cause diagnosed, if it fails."""
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            await client.stop()
            raise await diagnose(self.settings, exc, doing) from exc
        self._started = client

    async def stop(self) -> None:
        """Close: a consumer leaves its group, a producer flushes first. Nothing if unstarted."""
        if self._started is not None:
            await self._started.stop()
