"""The daemon and a spurious tombstone: a snapshot published again after it is believed."""

from __future__ import annotations

import asyncio

from consumer.testing.rig import Rig, drain, preview


def test_snapshot_tombstone_same_snapshot_fires_the_stall() -> None:
    """Snapshot, tombstone, the same snapshot again: the preview is stuck, and its stall fires."""
    rig = Rig()
    stuck = preview("stuck", created=0, previewing=1)
    rig.send(stuck, key="stuck", at=1)
    rig.send(None, key="stuck", at=2)  # a poller's tombstone on an answer it misread
    rig.send(stuck, key="stuck", at=3)  # the poller sees it again: the same bytes
    rig.send(preview("later", mode="power", active=False, created=30), key="later", at=30)
    asyncio.run(drain(rig.daemon()))
    assert rig.alerts() == [("stuck", "firing", "previewing")]
