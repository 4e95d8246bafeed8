"""Stall timers: which interactions have a stall coming due, bucketed by due time. Pure.

A timing wheel, not a heap of ``(due, id)`` tuples: ids sit in one dict per tenth of a
second of due time. A dict holding only strings is not tracked by the garbage collector,
so a million timers add nothing to its passes (the heap's tuples made every full
collection walk them all: 30-40 ms with 1M tracked), and setting the same timer again
replaces its entry instead of adding one.

The owner discards an entry when it knows the stall changed; whatever it missed (an
interaction expired or evicted) is found when its bucket comes due: the owner says which
stall is running on each id now, and an entry whose stall is gone, or now falls in
another bucket, is dropped as stale.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Final

from consumer.engine.stalls import Stall

BUCKETS_PER_SECOND: Final = 10
# the stall running on an interaction now, if any, by interaction id
Running = Callable[[str], Stall | None]


def _bucket(moment: float) -> int:
    return math.floor(moment * BUCKETS_PER_SECOND)


class Timers:
    """Interaction ids by the bucket their stall comes due in."""

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, None]] = {}
        self._order: list[int] = []  # a heap of the bucket numbers in ``_buckets``
        self._entries = 0

    def __len__(self) -> int:
        """Entries held, stale ones included."""
        return self._entries

    def set(self, interaction_id: str, due: float) -> None:
        """Have ``interaction_id`` looked at once ``due`` has passed."""
        number = _bucket(due)
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = {}
            heapq.heappush(self._order, number)
        if interaction_id not in bucket:
            bucket[interaction_id] = None
            self._entries += 1

    def discard(self, interaction_id: str, due: float) -> None:
        """Forget the timer set for ``interaction_id`` at ``due``, if it is still held."""
        bucket = self._buckets.get(_bucket(due))
        if bucket is not None and interaction_id in bucket:
            del bucket[interaction_id]
            self._entries -= 1

    def due(self, now: float) -> bool:
        """Some bucket has come due by ``now`` (:meth:`pop_due` has something to look at)."""
        order = self._order
        return bool(order) and order[0] <= _bucket(now)

    def pop_due(self, now: float, running: Running) -> list[tuple[str, Stall]]:
        """The stalls come due by ``now``; ``running(id)`` is the stall on ``id`` now, if any."""
        due: list[tuple[str, Stall]] = []
        order, current = self._order, _bucket(now)
        while order and order[0] <= current:
            number = order[0]
            bucket = self._buckets[number]
            for interaction_id in list(bucket):
                stall = running(interaction_id)
                if stall is not None and _bucket(stall.due) == number:
                    if stall.due > now:
                        continue  # later in the bucket now passing: it stays
                    due.append((interaction_id, stall))
                del bucket[interaction_id]
                self._entries -= 1
            if bucket:
                break
            heapq.heappop(order)
            del self._buckets[number]
        return due
