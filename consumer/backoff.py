"""One retry policy for everything that waits before trying again: exponential back-off.

Every retry in the project (connecting, restoring state, delivering outputs, posting to
Alertmanager, polling an API) uses this, each with its own first delay and cap, so that a
dependency that stays down is asked ever less often, up to the cap, and a success starts
afresh. Jitter (a fraction of the delay, drawn at random) spreads the retries of many
clients that failed at the same moment.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``first`` up to ``cap``; :meth:`reset` after a success."""

    def __init__(
        self, first: float, cap: float, *, jitter: float = 0.0, rng: random.Random | None = None
    ) -> None:
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - spreading retries, not secrets
        self._next = first

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long (up to the cap)."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        if self.jitter:
            delay *= 1 + self._rng.uniform(-self.jitter, self.jitter)
        return delay

    def reset(self) -> None:
        """A success: the next failure waits ``first`` again."""
        self._next = self.first
