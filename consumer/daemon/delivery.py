"""Delivery: the only place that awaits acknowledgements, and the order it keeps.

One batch's outputs are made durable in two rounds, retried as a whole with one back-off
until every send is acknowledged:

1. alert records (durable sinks), dead letters, re-keyed records, and the saved state of
   interactions that have no alert in the batch: sent together, then confirmed;
2. the saved state of interactions that have an alert in the batch: a saved "fired" must
   never stand for an alert that was lost, so it is sent only once round 1 is confirmed.

Best-effort sinks (the log, Alertmanager) are handed the alerts once, before round 1.
A sink that keeps alerts alive (Alertmanager, :class:`~consumer.daemon.ports.LiveSink`) also
follows ownership: :meth:`Delivery.announce` and :meth:`Delivery.forget`, on assignment and
revocation.
Only when both rounds are confirmed does :meth:`Delivery.deliver` return ``True``, and only
then are the batch's offsets durable (:mod:`consumer.daemon.ledger`). While an output
refuses records, it retries (fetching waits meanwhile: memory stays bounded, lag shows the
problem); asked to stop, it gives up and returns ``False``: the batch stays uncommitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from consumer.backoff import Backoff
from consumer.daemon.metrics import ConsumerMetrics
from consumer.daemon.outputs import AlertEvent, DeadLetter, Outputs
from consumer.daemon.ports import Ack, AlertSink, Clock, LiveSink, Producer
from consumer.daemon.records import StateRecord
from consumer.engine.sources import SourceEvent
from consumer.errors import OutputError
from consumer.formats import dead_letters
from consumer.formats.alerts import Alert, AnyAlert, to_wire
from consumer.observe.logs import fields
from consumer.settings.schema import KafkaSettings

log = logging.getLogger(__name__)


class Delivery:
    """Makes each batch's outputs durable, in order, retrying until they are."""

    def __init__(
        self,
        producer: Producer,
        sinks: Sequence[AlertSink],
        topics: Topics,
        metrics: ConsumerMetrics,
        clock: Clock,
        backoff: Backoff,
        stopping: asyncio.Event,
    ) -> None:
        self._producer = producer
        self.sinks = sinks
        self.live = [sink for sink in sinks if isinstance(sink, LiveSink)]  # follow ownership
        self._topics = topics
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._stopping = stopping
        self.delivering_since: float | None = None  # monotonic; for readiness
        self._dead_letter_partitions: int | None = None  # looked up when first needed

    async def deliver(self, out: Outputs) -> bool:
        """Make ``out`` durable; ``False`` if given up because the daemon is stopping."""
        if out.empty:
            return True
        alerts = self.formatted(out.events)
        for sink in self.sinks:
            if not sink.durable:  # best effort, handed over once
                await sink.publish(alerts)
        # a saved "fired" must never stand for an alert that was lost
        alerted = {a.interaction_id.encode() for a in alerts if isinstance(a, Alert)}
        first, later = out.states, {}
        if alerted:
            later = {p: [r for r in rs if r[0] in alerted] for p, rs in out.states.items()}
            first = {p: [r for r in rs if r[0] not in alerted] for p, rs in out.states.items()}
        self.delivering_since = self._clock.monotonic()
        self._backoff.reset()
        while True:
            try:
                acks = []
                for sink in self.sinks:
                    if sink.durable:
                        acks += await sink.publish(alerts)
                topics = self._topics
                if out.dead_letters:
                    if self._dead_letter_partitions is None:
                        found = await self._producer.partitions(topics.dead_letters)
                        self._dead_letter_partitions = found
                    acks += await send_dead_letters(
                        self._producer,
                        topics.dead_letters,
                        self._dead_letter_partitions,
                        out.dead_letters,
                        topics.dead_letter_max,
                    )
                forwarded = [
                    await self._producer.send(topics.repartition, key, value, timestamp_ms=ts)
                    for key, value, ts in out.forwards
                ]
                acks += forwarded
                acks += await self._save(first)
                await self._producer.confirm(acks)
                await self._producer.confirm(await self._save(later))
                break
            except OutputError as exc:
                self._metrics.output_errors.inc()
                self._dead_letter_partitions = None  # the topic may have been made anew
                delay = self._backoff.next()
                log.warning("output_failed", extra=fields(error=str(exc), retry_in=delay))
                if self._stopping.is_set():
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        self.delivering_since = None
        for ack in forwarded:  # where each re-keyed record landed (its RecordMetadata)
            landed = ack.result()
            tp = (landed.topic, landed.partition)
            out.forwarded[tp] = max(out.forwarded.get(tp, 0), landed.offset + 1)
        self._count(out, alerts)
        return True

    @staticmethod
    def formatted(events: Sequence[AlertEvent]) -> list[AnyAlert]:
        """The engine's events as the outside reads them (:mod:`consumer.formats.alerts`).

        One event that cannot be formatted (decoding keeps every time formattable, so this
        is a bug) is logged and left out: it must not take the others with it.
        """
        alerts: list[AnyAlert] = []
        for event in events:
            try:
                alerts.append(to_wire(event))
            except Exception as exc:  # the others still go out
                log.error("alert_unformattable", extra=fields(**_about(event), error=str(exc)))
        return alerts

    async def announce(self, events: Sequence[AlertEvent]) -> None:
        """A partition restored here: its firing alerts are re-sent by the live sinks.

        Not to the alerts topic nor the log: they are records of events, and these fired
        already (the topic has them; a restart must not look like a new firing there).
        """
        alerts = self.formatted(events)
        if alerts:
            for sink in self.live:
                await sink.announce(alerts)

    async def forget(self, alert_ids: Collection[str]) -> None:
        """Partitions given up: the live sinks send nothing more for ``alert_ids``."""
        if alert_ids:
            for sink in self.live:
                await sink.forget(alert_ids)

    async def _save(self, states: dict[int, list[StateRecord]]) -> list[Ack]:
        acks: list[Ack] = []
        if self._topics.state is None:
            return acks
        for partition, records in states.items():
            if records:
                self._metrics.state_writes.inc(len(records))
                acks += await self._producer.send_many(self._topics.state, partition, records)
        return acks

    def _count(self, out: Outputs, alerts: Sequence[AnyAlert]) -> None:
        """Metrics and logs of what was made durable."""
        wall = self._clock.wall()
        for sink in self.sinks:
            for alert in alerts:
                self._metrics.alerts_published.labels(sink.name, alert.status).inc()
        for due in out.fired_due:
            self._metrics.alert_delay.observe(max(0.0, wall - due))
        # one line per partition and reason: a flood of bad records is counted, not logged
        # line by line; the dead-letter topic's headers name each record and its error
        alike: dict[tuple[str, int, str], list[DeadLetter]] = {}
        for letter in out.dead_letters:
            record, invalid = letter
            alike.setdefault((record.topic, record.partition, invalid.reason), []).append(letter)
        for (topic, partition, reason), letters in alike.items():
            self._metrics.dead_letters.labels(reason).inc(len(letters))
            first = letters[0]
            log.warning(
                "dead_letter",
                extra=fields(
                    topic=topic,
                    partition=partition,
                    offset=first.record.offset,
                    reason=reason,
                    error=first.invalid.detail,
                    count=len(letters),
                    last_offset=letters[-1].record.offset,
                ),
            )


@dataclass(frozen=True)
class Topics:
    """Where the outputs go."""

    dead_letters: str
    dead_letter_max: int  # dead-letter copies are cut to this many bytes
    repartition: str
    state: str | None  # None: state is not persisted

    @classmethod
    def of(cls, kafka: KafkaSettings, *, persist_state: bool) -> Topics:
        """The output topics the settings name."""
        return cls(
            kafka.dead_letter_topic,
            kafka.dead_letter_max_value_bytes,
            kafka.repartition_topic_name,
            kafka.state_topic_name if persist_state else None,
        )


async def send_dead_letters(
    producer: Producer,
    topic: str,
    partitions: int,
    letters: Sequence[DeadLetter],
    max_value_bytes: int,
) -> list[Ack]:
    """Produce dead letters to a topic of ``partitions``; acks complete when acknowledged.

    The dead letters of input partition ``p`` go to partition ``p`` modulo the topic's
    partition count, in their input order, packed into producer batches (one ``send`` each
    cost a few per cent of the daemon's time at 2-3% malformed records). A value larger
    than ``max_value_bytes`` cannot be re-produced to a broker with default limits: its copy
    is cut to that size and marked truncated (:mod:`consumer.formats.dead_letters`).
    """
    grouped: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        grouped.setdefault(letter.record.partition % partitions, []).append(letter)
    acks: list[Ack] = []
    for partition, group in grouped.items():
        records: list[tuple[bytes | None, bytes | None]] = []
        headers = []
        for record, invalid in group:
            value = record.value
            truncated = value is not None and len(value) > max_value_bytes
            if value is not None and truncated:
                value = value[:max_value_bytes]
            records.append((record.key, value))
            size = 0 if record.value is None else len(record.value)
            headers.append(
                dead_letters.headers(
                    invalid,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.timestamp,
                    size,
                    truncated,
                )
            )
        acks += await producer.send_many(topic, partition, records, headers)
    return acks


def _about(event: AlertEvent) -> dict[str, str]:
    """What an event is about, for a log line: its interaction and rule, or its source."""
    if isinstance(event, SourceEvent):
        return {"topic": event.topic, "source": event.source}
    return {"interaction": event.interaction_id, "rule": event.stall.rule}
