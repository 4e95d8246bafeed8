"""What the poller sends: its records on its two topics, and its heartbeats.

* **Campaign settings** go to ``<topic>.campaigns`` (compacted, keyed by campaign id;
  format in :mod:`consumer.formats.campaigns`) whenever they change; a deleted campaign
  gets a tombstone there too.

Publishing goes through :class:`~consumer.daemon.ports.Publisher`; a record is
counted as published once acknowledged, and a poll whose records were not acknowledged
counts as failed and is published again next round.
"""

from __future__ import annotations

import logging

from consumer.daemon.ports import Publisher
from consumer.errors import OutputError
from consumer.formats import campaigns as campaign_records
from consumer.formats import heartbeat
from consumer.formats.campaigns import Campaign
from consumer.genesys.changes import Outgoing
from consumer.genesys.metrics import PollerMetrics
from consumer.kafka.heartbeats import send_heartbeats
from consumer.observe.logs import fields

# the poller's events keep the logger name operators know them by
log = logging.getLogger("consumer.genesys.poller")


class Sender:
    """The poller's records on ``kafka.topic`` and ``<topic>.campaigns``; its heartbeats."""

    def __init__(
        self, publisher: Publisher, topic: str, source_id: str, metrics: PollerMetrics
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.campaigns_topic = campaign_records.topic_for(topic)
        self.source_id = source_id
        self.metrics = metrics
        self._campaign_values: dict[str, bytes] = {}  # campaign id -> last record published

    async def send(self, records: list[Outgoing], kind: str) -> None:
        """Publish (key, value, headers) records and wait until all are acknowledged.

        Each also says which source published it: the daemon judges an interaction only
        as far as its own source's heartbeats vouch (:mod:`consumer.formats.heartbeat`).
        """
        if not records:
            return
        source = heartbeat.source_header(self.source_id)
        acks = [
            await self.publisher.send(self.topic, key, value, [*headers, source])
            for key, value, headers in records
        ]
        await self.publisher.confirm(acks)
        self.metrics.published.labels(kind).inc(len(records))

    async def campaign(self, campaign: Campaign) -> None:
        """Publish a campaign's settings, when they differ from those last published."""
        value = campaign_records.encode(campaign)
        if self._campaign_values.get(campaign.id) == value:
            return
        try:
            ack = await self.publisher.send(self.campaigns_topic, campaign.id.encode(), value)
            await self.publisher.confirm([ack])
        except OutputError as exc:
            log.warning("publish_failed", extra=fields(topic=self.campaigns_topic, error=str(exc)))
            return  # published again at the next read of the campaigns
        self._campaign_values[campaign.id] = value
        self.metrics.published.labels("campaign").inc()

    async def campaign_deleted(self, campaign_id: str) -> None:
        """A tombstone for the settings published of a campaign proven deleted."""
        if campaign_id not in self._campaign_values:
            return
        try:
            ack = await self.publisher.send(self.campaigns_topic, campaign_id.encode(), None)
            await self.publisher.confirm([ack])
            del self._campaign_values[campaign_id]
        except OutputError as exc:
            log.warning("publish_failed", extra=fields(topic=self.campaigns_topic, error=str(exc)))

    async def heartbeat(self, up_to: float, interval: float) -> None:
        """One heartbeat on every partition, vouching up to ``up_to``."""
        try:
            sent = await send_heartbeats(
                self.publisher, self.topic, self.source_id, up_to, interval
            )
        except OutputError as exc:
            log.warning("heartbeat_failed", extra=fields(error=str(exc)))
            return
        self.metrics.heartbeats.inc(sent)
