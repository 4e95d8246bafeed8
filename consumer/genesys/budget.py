"""A request budget: at most N requests in any window of a minute (pure, clock passed in).

The Platform API allows a client-credentials token 300 requests a minute and answers 429
beyond. A sliding log of the last window's request times keeps the poller under its own,
lower budget in *every* 60-second window, not just per calendar minute, so that a burst
at a minute's end and another at the next minute's start cannot add up past the limit.
"""

from __future__ import annotations

from collections import deque


class RequestBudget:
    """At most ``per_window`` requests in any ``window`` seconds."""

    def __init__(self, per_window: int, window: float = 60.0) -> None:
        self.per_window = per_window
        self.window = window
        self._sent: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next request fits the budget (0: now)."""
        self._forget(now)
        if len(self._sent) < self.per_window:
            return 0.0
        return self._sent[0] + self.window - now

    def spend(self, now: float) -> None:
        """Count a request sent at ``now``."""
        self._sent.append(now)

    def used(self, now: float) -> int:
        """Requests sent in the window that ends at ``now``."""
        self._forget(now)
        return len(self._sent)
