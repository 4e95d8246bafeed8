"""The memory budget of a process's tracked interactions, from its container's limit.

As Go's ``GOMEMLIMIT`` and the JVM's container support do, the daemon reads the memory
limit of its cgroup (v2 ``memory.max``, v1 ``memory/memory.limit_in_bytes``) and keeps
what it tracks within it: of the limit, :data:`BASE_BYTES` go to the runtime (the
interpreter and imports, the Kafka client's fetch buffers, HTTP, metrics), and half of
the rest to the tracked interactions. The other half is the restore's: while a partition
is restored its changelog records, as read, sit beside the interactions decoded from
them. ``tracking.memory_limit_bytes`` sets the tracked interactions' share outright.

The share becomes a number of interactions at :func:`bytes_per_interaction`, measured by
``bench/memory.py`` (docs/performance.md, Memory) for the build that runs: compiled,
interactions are native objects with unboxed times; uncompiled, msgspec structs with a
float object per time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
# cgroup v1 says "no limit" with the largest page-aligned 63-bit number; anything from
# 2**60 (an exbibyte) on is no limit either
V1_UNLIMITED: Final = 1 << 60
MIB: Final = 1 << 20
BASE_BYTES: Final = 96 * MIB
# measured at 1M tracked (bench/memory.py, 2026-12-07): 299 compiled, 411 uncompiled;
# rounded up, so the budget errs on the safe side
COMPILED_BYTES: Final = 320
UNCOMPILED_BYTES: Final = 440


def container_limit(root: Path = CGROUP_ROOT) -> int | None:
    """The cgroup's memory limit in bytes; ``None`` when there is none, or none to read.

    cgroup v2 first (``memory.max``: a number, or ``max``), then v1. A file that cannot
    be read or parsed counts as no limit: the daemon then bounds each partition alone.
    """
    try:
        text = (root / "memory.max").read_text().strip()
    except OSError:
        pass
    else:
        return None if text == "max" else _bytes(text)
    try:
        text = (root / "memory" / "memory.limit_in_bytes").read_text().strip()
    except OSError:
        return None
    limit = _bytes(text)
    return None if limit is None or limit >= V1_UNLIMITED else limit


def _bytes(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def bytes_per_interaction(compiled: bool) -> int:
    """What one tracked interaction costs, all overheads included, for the build that runs."""
    return COMPILED_BYTES if compiled else UNCOMPILED_BYTES


def tracking_bytes(setting: int | None, limit: int | None) -> int | None:
    """The tracked interactions' share: ``setting`` if set, else derived from ``limit``.

    ``None`` with neither (no container limit): no budget, each partition capped alone.
    A limit at or under :data:`BASE_BYTES` leaves a share of one interaction's worth: the
    daemon sheds everything new rather than be killed.
    """
    if setting is not None:
        return setting
    if limit is None:
        return None
    return max((limit - BASE_BYTES) // 2, 1)


def budget_interactions(share: int, compiled: bool) -> int:
    """How many interactions ``share`` bytes hold; at least one."""
    return max(share // bytes_per_interaction(compiled), 1)
