"""Stopping on SIGTERM and SIGINT: one place for every long-running command."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from consumer.observe.logs import fields

log = logging.getLogger(__name__)


def on_stop(stop: Callable[[], None]) -> None:
    """Call ``stop`` (in the running event loop) when SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()

    def received(name: str) -> None:
        log.info("signal", extra=fields(signal=name))
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, received, sig.name)


async def until_stopped(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body`` with an event that SIGTERM or SIGINT sets; return when it returns."""
    stop = asyncio.Event()
    on_stop(stop.set)
    await body(stop)
