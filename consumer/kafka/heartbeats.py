"""A source's heartbeats: one acknowledged record on every partition of its topic.

In the format of :mod:`consumer.formats.heartbeat`, so that a consumer of any partition hears
that the source (``poll``, ``simulate --topic``) is alive and has published everything up
to ``up_to``.
"""

from __future__ import annotations

from consumer.daemon.ports import Publisher
from consumer.formats import heartbeat


async def send_heartbeats(
    publisher: Publisher, topic: str, source: str, up_to: float, interval_seconds: float
) -> int:
    """One acknowledged heartbeat on every partition of ``topic``; returns how many."""
    value = heartbeat.encode(source, up_to, interval_seconds)
    headers = [(heartbeat.HEADER, source.encode())]
    count = await publisher.partitions(topic)
    acks = [
        await publisher.send(topic, source.encode(), value, headers, partition=partition)
        for partition in range(count)
    ]
    await publisher.confirm(acks)
    return count
