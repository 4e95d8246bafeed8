"""Committing input offsets: what the ledger says is durable, in the background.

One commit runs at a time; a batch that finds one running leaves its offsets to the next.
Rebalances and shutdown wait for the running one, then commit whatever is durable by then.
A commit that fails (a rebalance in the way, the broker away) is counted and left to the
next: redelivery meanwhile is harmless, merging being idempotent. A commit that raises
instead (a bug: the consumer maps the broker's errors) stops the daemon through the
supervisor rather than leaving every later commit waiting for it.
"""

from __future__ import annotations

import asyncio
import functools

from consumer.daemon.ledger import OffsetLedger
from consumer.daemon.metrics import ConsumerMetrics
from consumer.daemon.ports import Clock, Consumer
from consumer.daemon.records import Partition
from consumer.daemon.supervise import Supervisor


class Commits:
    """Commits the ledger's durable offsets through the consumer."""

    def __init__(
        self,
        consumer: Consumer,
        ledger: OffsetLedger,
        metrics: ConsumerMetrics,
        clock: Clock,
        supervisor: Supervisor,
    ) -> None:
        self._consumer = consumer
        self._ledger = ledger
        self._metrics = metrics
        self._clock = clock
        self._supervisor = supervisor
        self._running: asyncio.Task[None] | None = None

    def soon(self) -> None:
        """Commit what is durable now, without waiting for the broker's answer."""
        if self._running is None or self._running.done():
            offsets = self._ledger.to_commit()
            if offsets:
                self._running = self._start(offsets)

    async def now(self) -> None:
        """Wait for the commit running, then commit what is durable (rebalance, shutdown)."""
        if self._running is not None:
            await self._running
        offsets = self._ledger.to_commit()
        if offsets:
            await self._start(offsets)

    def _start(self, offsets: dict[Partition, int]) -> asyncio.Task[None]:
        """Commit ``offsets`` in a task that cannot raise: a failure stops the daemon."""
        return self._supervisor.start("commit", functools.partial(self._commit, offsets), "stop")

    async def _commit(self, offsets: dict[Partition, int]) -> None:
        if await self._consumer.commit(offsets):
            self._ledger.committed(offsets)
            self._metrics.commits.labels("ok").inc()
            self._metrics.last_commit.set(self._clock.wall())
        else:
            self._metrics.commits.labels("failed").inc()
