"""Readiness: why the daemon should not get traffic or be trusted now. Pure.

``/readyz`` answers 200 with no problem listed, 503 with the list otherwise. The lag and
caught-up figures come from the partition views the batch step computed, so readiness,
metrics and the clocks agree on one number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from consumer.daemon.partition import PartitionView

# acknowledgements normally take milliseconds: seconds mean an output refuses records
ACK_PATIENCE: Final = 5.0


def problems(
    *,
    joined: bool,
    now: float,
    last_loop: float,
    broker_down_since: float | None,
    delivering_since: float | None,
    views: Sequence[PartitionView],
    stuck_after: float,
    restores: Mapping[str, str] | None = None,
) -> list[str]:
    """What keeps the daemon from being ready; empty when it is. Times are monotonic.

    ``restores``: how far each partition's restore got, by partition name.
    """
    if not joined:
        return ["not yet joined the consumer group"]
    found = []
    if now - last_loop > stuck_after:
        found.append(f"fetch loop has not turned for {now - last_loop:.0f}s")
    if broker_down_since is not None:
        found.append(f"no broker answers, for {now - broker_down_since:.0f}s")
    if delivering_since is not None and now - delivering_since > ACK_PATIENCE:
        found.append(f"outputs not acknowledged for {now - delivering_since:.0f}s")
    # a restore says how far it got from its first chunk on, before a batch step has
    # seen the partition
    restoring = max(sum(view.restoring for view in views), len(restores or ()))
    if restoring:
        said = f"restoring the state of {restoring} partition(s)"
        if restores:
            said += ": " + "; ".join(f"{tp} {done}" for tp, done in sorted(restores.items()))
        found.append(said)
    for view in views:
        if view.lag and now - view.progressed_at > stuck_after:
            found.append(
                f"{view.topic}[{view.partition}] lag {view.lag} with no progress for "
                f"{now - view.progressed_at:.0f}s"
            )
    return found
