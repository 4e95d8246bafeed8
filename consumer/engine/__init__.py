"""The pure core: snapshots in, stages, stall events and saved state out.

Nothing here does I/O, reads a clock or imports asyncio, aiokafka, aiohttp or
prometheus-client: every function takes the time it needs as an argument, so the daemon,
``replay`` and the simulator run the same rules, and tests drive them with plain calls.
"""
