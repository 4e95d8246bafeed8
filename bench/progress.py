"""How a benchmark contender counts records and times them, first to last."""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """Counts records and times the span from the first to the last."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.records = 0
        self.first = 0.0
        self.last = 0.0

    def add(self, n: int) -> bool:
        """``n`` more records were handled; returns whether all expected ones are."""
        if self.records >= self.expected:
            return True  # counted and timed up to the expected one; what follows is not
        now = time.perf_counter()
        if n and not self.records:
            self.first = now
        self.records += n
        self.last = now
        return self.records >= self.expected

    def report(self, contender: str) -> dict[str, Any]:
        """The result line a contender process prints."""
        seconds = self.last - self.first
        return {
            "contender": contender,
            "records": self.records,
            "seconds": round(seconds, 3),
            "per_second": round(self.records / seconds) if seconds > 0 else 0,
        }
