"""Is any broker there? A probe every few seconds, for readiness and the clocks' trust.

aiokafka has no health API and keeps returning empty fetches while the brokers are away,
so the daemon asks for metadata directly. While no broker answers, the daemon is not ready
and no partition counts as caught up: its clock stops instead of judging silence it
cannot see.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from consumer.daemon.ports import Clock, Consumer

log = logging.getLogger(__name__)

PROBE_EVERY: Final = 2.0  # seconds between probes
PROBE_TIMEOUT: Final = 5.0


class BrokerProbe:
    """Whether a broker answered lately, and since when none does."""

    def __init__(self, consumer: Consumer, clock: Clock) -> None:
        self._consumer = consumer
        self._clock = clock
        self.down_since: float | None = None  # monotonic

    async def run(self) -> None:
        """Probe until cancelled; log each change."""
        while True:
            if await self._consumer.reachable(timeout=PROBE_TIMEOUT):
                if self.down_since is not None:
                    log.info("broker_reachable")
                self.down_since = None
            elif self.down_since is None:
                self.down_since = self._clock.monotonic()
                log.warning("broker_unreachable")
            await asyncio.sleep(PROBE_EVERY)
