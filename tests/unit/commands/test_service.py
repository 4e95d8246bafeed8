"""Wiring the daemon: what it does to the process beyond building objects."""

from __future__ import annotations

import asyncio
import gc

from consumer.commands import run as service
from consumer.settings.load import load_settings


def test_wiring_freezes_the_startup_objects_and_spaces_young_collections() -> None:
    """After wiring, full collections skip what existed, and young ones come 10k apart."""
    before = gc.get_threshold()
    gc.unfreeze()

    async def wire() -> None:
        service.daemon(load_settings(), service.new_registry())

    try:
        asyncio.run(wire())
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (service.YOUNG_COLLECTION_EVERY, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
