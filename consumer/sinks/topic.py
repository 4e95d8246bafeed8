"""The alerts topic as an alert sink (:class:`~consumer.daemon.ports.AlertSink`): durable.

Keyed by interaction id, or by source id for a silent source.

The log sink is :mod:`consumer.sinks.log`, the Alertmanager sink
:mod:`consumer.sinks.alertmanager`.
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer.daemon.ports import Ack, Producer
from consumer.formats.alerts import Alert, AnyAlert, encode_alert


class TopicSink:
    """Alerts produced to a topic, keyed by interaction (or source) id."""

    name = "topic"
    durable = True

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def publish(self, alerts: Sequence[AnyAlert]) -> list[Ack]:
        """Produce each alert; the futures complete when the broker acknowledged them."""
        acks = []
        for alert in alerts:
            key = alert.interaction_id if isinstance(alert, Alert) else alert.source_id
            acks.append(await self._producer.send(self.topic, key.encode(), encode_alert(alert)))
        return acks
