"""The daemon's background tasks, started so that none can die unseen.

asyncio keeps the exception of a task nobody awaits until the task is collected: a
restore that raised left its partition paused for good, and a campaign follower that
raised froze the thresholds, without a log line. Every long-running task is therefore
started through :meth:`Supervisor.start`, which logs a failure with its traceback,
counts it (``dialer_task_failures_total{task}``) and then does what the caller chose for
that task:

* ``restart``: run it again after a back-off (:mod:`consumer.backoff`), for a task whose
  failure says nothing about the data it reads (a probe, a poster, a follower that
  skips what it cannot use): running again is how it recovers. The back-off starts
  afresh once a run has lasted longer than the back-off's cap.
* ``stop``: stop the daemon. For a task that would fail again on the same input if run
  again (a restore reads the same compacted records every time; what it can skip it
  skips by itself) or whose failure leaves the daemon unable to do its job (a commit
  that raises, rather than report the refusals the source maps, would leave every later
  commit waiting). What is left is a bug, and a restart of the process (exit status 4,
  :mod:`consumer.commands.run`) with the failure logged is clearer than a partition never read
  or offsets never committed. :meth:`Daemon.run <consumer.daemon.loop.Daemon.run>`
  raises :class:`TaskFailedError` once it has stopped.

Tasks that are awaited where they start (a batch's delivery, the daemon's own run) need
none of this: their exception reaches whoever awaits them. The HTTP port is aiohttp's
server, which runs no task of ours and answers a handler's exception with a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from prometheus_client import Counter

from consumer.backoff import Backoff
from consumer.errors import ServiceError
from consumer.observe.logs import fields

log = logging.getLogger(__name__)

OnFailure = Literal["restart", "stop"]


class TaskFailedError(ServiceError):
    """A background task whose failure stops the daemon failed; the message names it."""

    def __init__(self, task: str, error: BaseException) -> None:
        super().__init__(f"background task {task} failed: {type(error).__name__}: {error}")
        self.task = task


class Supervisor:
    """Starts background tasks; logs, counts and restarts them, or stops the daemon."""

    def __init__(
        self, failures: Counter, stop: Callable[[], None], backoff: Callable[[], Backoff]
    ) -> None:
        self._failures = failures
        self._stop = stop
        self._backoff = backoff
        self.failed: TaskFailedError | None = None  # the first failure that stopped the daemon

    def start(
        self,
        task: str,
        run: Callable[[], Awaitable[None]],
        on_failure: OnFailure,
        **context: object,
    ) -> asyncio.Task[None]:
        """Start ``run()`` as the task named ``task`` (a bounded metric label).

        ``context`` goes into the failure's log line (``partition="topic[0]"``).
        """
        self._failures.labels(task)  # the series exists, at 0, before any failure
        supervised = self._supervise(task, run, on_failure, context)
        return asyncio.create_task(supervised, name=task)

    async def _supervise(
        self,
        task: str,
        run: Callable[[], Awaitable[None]],
        on_failure: OnFailure,
        context: dict[str, object],
    ) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._backoff()
        while True:
            started = loop.time()
            try:
                await run()
                return  # done: a task that ends by itself ends well
            except Exception as exc:  # what asyncio would keep quiet: said, counted, handled
                self._failures.labels(task).inc()
                if on_failure == "stop":
                    log.exception("task_failed", extra=fields(task=task, then="stop", **context))
                    if self.failed is None:
                        self.failed = TaskFailedError(task, exc)
                    self._stop()
                    return
                if loop.time() - started > backoff.cap:
                    backoff.reset()  # it ran well for a while: this failure is a new one
                delay = backoff.next()
                log.exception(
                    "task_failed",
                    extra=fields(task=task, then="restart", retry_in=delay, **context),
                )
            await asyncio.sleep(delay)
