"""The daemon: a thin asyncio loop over a pure batch step."""
