"""The time the Platform API client and the poller read, and their waits on it.

Everything of theirs that waits goes through a :class:`Pacer`, so tests run a simulated
minute in an instant. (Not :class:`consumer.daemon.ports.Clock`, the daemon's wall and
monotonic time: a pacer also waits.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Pacer(Protocol):
    """Wall-clock time and waiting; tests pass one that skips the waits."""

    def time(self) -> float:
        """Epoch seconds now."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemPacer:
    """The real clock."""

    def time(self) -> float:
        """Epoch seconds now."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""
        await asyncio.sleep(seconds)


async def sleep_unless(pacer: Pacer, seconds: float, woken: asyncio.Event) -> None:
    """Wait ``seconds`` on ``pacer``, or until ``woken`` is set, whichever comes first."""
    if seconds <= 0 or woken.is_set():
        return
    sleeping = asyncio.ensure_future(pacer.sleep(seconds))
    waking = asyncio.ensure_future(woken.wait())
    await asyncio.wait([sleeping, waking], return_when=asyncio.FIRST_COMPLETED)
    for task in (sleeping, waking):
        task.cancel()
    await asyncio.gather(sleeping, waking, return_exceptions=True)
