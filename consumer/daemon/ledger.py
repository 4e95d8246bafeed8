"""The offsets ledger: which input offsets may be committed. Pure.

The delivery guarantee in one rule: a partition's offset is committed only once every
output of every batch up to it (alert records, dead letters, re-keyed records, saved
state) was acknowledged. The step hands each batch's offsets over with its outputs (as
far as the state saved so far goes: :mod:`consumer.daemon.step` saves it every few seconds);
delivery reports the batch :meth:`~OffsetLedger.delivered` only when all of them were
acknowledged, so :meth:`~OffsetLedger.to_commit` never runs ahead of what is durable. A
batch given up on at shutdown is never reported, and stays uncommitted: the next owner
reads it again. Offsets of partitions no longer owned are dropped, never committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from consumer.daemon.records import Partition


class OffsetLedger:
    """Durable and committed next-offsets of the partitions this instance owns."""

    def __init__(self) -> None:
        self._owned: set[Partition] = set()
        self._durable: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}
        self._halted = False

    def own(self, partitions: Iterable[Partition]) -> None:
        """``partitions`` were assigned to this instance."""
        self._owned.update(partitions)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """``partitions`` were revoked: nothing of theirs is committed from now on."""
        for tp in partitions:
            self._owned.discard(tp)
            self._durable.pop(tp, None)
            self._committed.pop(tp, None)

    def delivered(self, offsets: Mapping[Partition, int]) -> None:
        """Everything a batch caused was acknowledged: its offsets are durable."""
        if self._halted:
            return
        for tp, offset in offsets.items():
            if tp in self._owned:
                self._durable[tp] = offset

    def to_commit(self) -> dict[Partition, int]:
        """Durable offsets not committed yet."""
        return {
            tp: offset for tp, offset in self._durable.items() if self._committed.get(tp) != offset
        }

    def give_up(self) -> None:
        """A batch was given up at shutdown: no later batch's offsets may pass it either."""
        self._halted = True

    @property
    def halted(self) -> bool:
        """A batch was given up: nothing after it may be made durable."""
        return self._halted

    @property
    def committed_offsets(self) -> dict[Partition, int]:
        """The offsets committed last, per partition owned (a copy)."""
        return dict(self._committed)

    def committed(self, offsets: Mapping[Partition, int]) -> None:
        """The broker accepted a commit of ``offsets``."""
        for tp, offset in offsets.items():
            if tp in self._owned:
                self._committed[tp] = offset
