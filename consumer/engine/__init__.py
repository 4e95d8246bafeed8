"""The pure core: snapshots in, stages, stall events and saved state out.

Nothing here does I/O, reads a clock or imports asyncio, aiokafka, aiohttp or
prometheus-client: every function takes the time it needs as an argument, so the daemon,
``replay`` and the simulator run the same rules, and tests drive them with plain calls.

The modules a record goes through can be compiled to C by mypyc (``setup.py``); the same
source runs uncompiled where no compiler was used, only slower.
"""

from __future__ import annotations


def compiled() -> bool:
    """Whether the engine's hot path runs compiled (a wheel built with ``CONSUMER_USE_MYPYC=1``)."""
    from consumer.engine import tracker  # the heart of the hot path, compiled or not

    return not tracker.__file__.endswith(".py")
