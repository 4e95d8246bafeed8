"""What the batch step needs of the settings: plain values (:mod:`consumer.daemon.policy`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSettings:
    """What the step needs of the settings: plain values."""

    max_record_bytes: int = 1_000_000
    check_keys: bool = True  # warn about snapshots not keyed by their interaction id
    max_clock_skew: float = 60.0
    retired_sources: frozenset[str] = frozenset()  # heartbeats ignored, saved state dropped
    expected_sources: frozenset[str] = frozenset()  # silent until heard, on every partition
    persist_state: bool = True
    save_every: float = 0.0  # seconds between saves of a partition's changed state
