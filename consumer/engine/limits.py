"""Bounds on the interactions trackers hold: each its own TTL and cap, all of them a budget.

:class:`Limits` bounds one :class:`~consumer.engine.tracker.Tracker`; a :class:`Budget`,
shared, bounds every tracker of the process (its memory). The tracker enforces them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a budget holds trackers, a tracker its limits: only a type here
    from consumer.engine.tracker import Tracker


class Budget:
    """One bound on the interactions of all the trackers of a process (its memory budget).

    ``trackers`` lists them all, whatever partition or source they track. ``used`` is a
    running count (every tracker adds what it takes in and subtracts what it drops); it
    is counted again from the trackers whenever it says the budget is spent, so that the
    interactions of a tracker given up (a revoked partition) stop counting there. Past
    the budget the least recently updated interactions of the whole process are shed:
    the fronts (least recently updated) of all the trackers, the oldest of them first.
    Trackers keep their own times (a partition's clock), which agree to within the clock
    skew the daemon allows, but for a partition reading a backlog on event time.
    """

    def __init__(self, interactions: int, trackers: Callable[[], Iterable[Tracker]]) -> None:
        self.interactions = interactions
        self.trackers = trackers
        self.used = 0


@dataclass(frozen=True)
class Limits:
    """Bounds on what one tracker holds; ``budget``, shared, on what all of them hold."""

    ttl_seconds: float = 4 * 3600.0
    max_interactions: int = 1_000_000
    budget: Budget | None = None
