"""The poller's memory across restarts: its own topic, read back.

* **Memory across restarts.** The topic is the poller's own changelog: before its first
  round, :meth:`~consumer.genesys.poller.Poller.rebuild` reads it to its end (readiness
  says so meanwhile) and keeps each key's digest under the campaign its value names
  (``campaign.id``, which every value the poller publishes has). Those interactions belong
  to no watched campaign until theirs is watched; from then on the two-polls rule holds
  for them too, so what ended while no poller ran is tombstoned in the first rounds, and
  those of a campaign proven over meanwhile at the first campaign read. (The simplest
  honest rule: a value naming a campaign is taken for the poller's; the topic must be its
  own.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from consumer.formats import heartbeat
from consumer.genesys.answer import campaign_of
from consumer.genesys.changes import digest


class History(Protocol):
    """Reads one partition of a compacted topic back: the latest value per key.

    The poller reads its own topic back with it (a
    :class:`~consumer.kafka.readers.ChangelogReader`; unit tests pass a fake).
    """

    async def read(
        self, partition: int, progress: Callable[[int], None]
    ) -> dict[bytes, bytes | None]:
        """The latest value per key from the partition's start to its current end."""
        ...


async def read_back(history: History, partitions: int) -> dict[str, dict[str, bytes]]:
    """What the topic's ``partitions`` hold of the poller's: campaign id -> id -> digest.

    The latest value of each key is what was last published for it (a tombstone: nothing);
    heartbeats and values without a campaign are not interactions of ours.
    """
    restored: dict[str, dict[str, bytes]] = {}
    for partition in range(partitions):
        latest = await history.read(partition, lambda _: None)
        for key, value in latest.items():
            if value is None or heartbeat.decode(value) is not None:
                continue
            campaign_id = campaign_of(value)
            if campaign_id is not None:
                restored.setdefault(campaign_id, {})[key.decode(errors="replace")] = digest(value)
    return restored
