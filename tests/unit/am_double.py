"""A stand-in for Alertmanager's API v2: a real aiohttp server on loopback that records posts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


class FakeAlertmanager:
    """``POST /api/v2/alerts`` on loopback: records each post; can be held or failed."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []
        self.arrived = asyncio.Event()  # set on each post, before it is held
        self.open = asyncio.Event()  # posts are answered only while set
        self.open.set()
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        """Record the post, wait for the gate, accept."""
        self.posts.append(await request.json())
        self.arrived.set()
        await self.open.wait()
        return web.Response()

    def interactions(self, since: int = 0) -> set[str]:
        """Every interaction id received so far (in the posts from number ``since`` on)."""
        return {alert["labels"]["interaction_id"] for post in self.posts[since:] for alert in post}

    def times_posted(self, interaction: str, since: int = 0) -> int:
        """How often ``interaction`` was posted (in the posts from number ``since`` on)."""
        return sum(
            alert["labels"]["interaction_id"] == interaction
            for post in self.posts[since:]
            for alert in post
        )

    async def until(self, wanted: set[str]) -> None:
        """Wait until every interaction in ``wanted`` has been received."""
        async with asyncio.timeout(20):
            while not wanted <= self.interactions():
                await asyncio.sleep(0.02)


@asynccontextmanager
async def alertmanager() -> AsyncIterator[FakeAlertmanager]:
    """A :class:`FakeAlertmanager` served by aiohttp on a free loopback port."""
    fake = FakeAlertmanager()
    app = web.Application()
    app.router.add_post("/api/v2/alerts", fake.receive)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        fake.open.set()
        await runner.cleanup()
