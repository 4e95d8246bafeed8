"""The one module that speaks aiokafka: consumer, producer, admin, rebalance listener.

Everything aiokafka raises is translated here into :mod:`consumer.errors`, so the rest
of the service handles the project's own error tree. Facts about aiokafka that shape
this module (see README, "Kafka notes"):

* values are decoded by the caller, never in a ``value_deserializer``: an exception
  there makes aiokafka re-read the same record forever;
* commits are manual (``offset + 1`` of the last applied record): auto-commit would
  mark fetched but unprocessed records as done;
* ``on_partitions_revoked`` is not called on ``stop()``: the runner commits itself
  before stopping;
* position is asynchronous, so the runner keeps its own next offsets, and lag is
  ``highwater - next offset``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
)
from aiokafka.record import default_records

from consumer.adapters.logs import fields
from consumer.config import KafkaSettings
from consumer.errors import AuthenticationError, BrokerError, OutputError

log = logging.getLogger(__name__)

Partition = tuple[str, int]
Headers = Sequence[tuple[str, bytes]]


class Record(Protocol):
    """What the runner reads of a consumed record (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


_AUTH_ERRORS: Final = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
)


def _translate(exc: BaseException, doing: str) -> BrokerError:
    """The project's error for an aiokafka failure while ``doing`` something."""
    if isinstance(exc, (*_AUTH_ERRORS, ssl.SSLError)):
        return AuthenticationError(f"{doing}: broker rejected the credentials ({exc})")
    return BrokerError(f"{doing}: {type(exc).__name__}: {exc}")


async def diagnose(settings: KafkaSettings, exc: BaseException, doing: str) -> BrokerError:
    """The project's error for a failure to reach the cluster at all.

    aiokafka logs why each bootstrap server failed and raises a generic connection error;
    one direct connection to the first server tells a rejected login (final) from a
    broker that is away (worth retrying).
    """
    if isinstance(exc, KafkaConnectionError):
        host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
        options = client_options(settings)
        del options["bootstrap_servers"]
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=10_000, **options)
            conn.close()
        except (KafkaError, OSError, TimeoutError, ssl.SSLError) as cause:
            return _translate(cause, doing)
    return _translate(exc, doing)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by consumer, producer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
        context.check_hostname = settings.ssl_check_hostname
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # checked when settings load
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.reveal()
    return options


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        revoked: Callable[[list[Partition]], Awaitable[None]],
        assigned: Callable[[list[Partition]], Awaitable[None]],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._assigned([(tp.topic, tp.partition) for tp in assigned])


class Source:
    """The interactions topic, read in a consumer group with manual commits."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._consumer = AIOKafkaConsumer(
            group_id=settings.group_id,
            group_instance_id=settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 10),
            max_partition_fetch_bytes=max(1_048_576, settings.max_record_bytes + 1024),
            **client_options(settings),
        )

    async def start(
        self,
        topics: list[str],
        revoked: Callable[[list[Partition]], Awaitable[None]],
        assigned: Callable[[list[Partition]], Awaitable[None]],
    ) -> None:
        """Connect and subscribe to ``topics``; the callbacks run on every rebalance."""
        try:
            await self._consumer.start()
        except (KafkaError, OSError) as exc:
            await self._consumer.stop()
            raise await diagnose(self.settings, exc, "connecting the consumer") from exc
        self._consumer.subscribe(topics, listener=_Listener(revoked, assigned))

    async def fetch(self, timeout: float, limit: int) -> dict[Partition, list[Record]]:
        """One batch of records per partition; empty after ``timeout`` seconds of nothing."""
        try:
            batch = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=limit)
        except KafkaError as exc:
            raise _translate(exc, "fetching") from exc
        return {(tp.topic, tp.partition): records for tp, records in batch.items()}

    async def position(self, partition: Partition) -> int:
        """The offset of the next record to read from ``partition``."""
        try:
            offset: int = await self._consumer.position(TopicPartition(*partition))
        except KafkaError as exc:
            raise _translate(exc, f"reading the position of {partition}") from exc
        return offset

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching from ``partitions`` (while their state is restored)."""
        self._consumer.pause(*(TopicPartition(*tp) for tp in partitions))

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch from ``partitions`` again."""
        self._consumer.resume(*(TopicPartition(*tp) for tp in partitions))

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as of the last fetch, or ``None`` before one."""
        value: int | None = self._consumer.highwater(TopicPartition(*partition))
        return value

    async def commit(self, offsets: Mapping[Partition, int]) -> bool:
        """Commit next-offsets; ``False`` when a rebalance got in the way (retried later)."""
        if not offsets:
            return True
        try:
            await self._consumer.commit({TopicPartition(*tp): o for tp, o in offsets.items()})
        except KafkaError as exc:
            # a rebalance in the way (CommitFailedError) or the broker away: the offsets are
            # committed with the next batch, and redelivery meanwhile is harmless
            log.warning("commit_failed", extra=fields(error=f"{type(exc).__name__}: {exc}"))
            return False
        return True

    async def reachable(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request within ``timeout`` seconds.

        aiokafka has no health API and keeps returning empty fetches while the brokers are
        away, so readiness asks this directly.
        """
        try:
            await asyncio.wait_for(self._consumer.topics(), timeout)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True

    async def stop(self) -> None:
        """Leave the group and close connections."""
        await self._consumer.stop()


class Sink:
    """A producer for the service's outputs (alerts, dead letters); sends are acknowledged."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # the daemon waits for the acks of every batch: lingering only delays
            max_batch_size=262_144,  # the state changelog writes thousands of records a batch
            max_request_size=max(1_048_576, settings.dead_letter_max_value_bytes + 65_536),
            **client_options(settings),
        )

    async def start(self) -> None:
        """Connect."""
        try:
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            await self._producer.stop()
            raise await diagnose(self.settings, exc, "connecting the producer") from exc

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record; the returned future resolves when the broker acknowledged it."""
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic,
                value=value,
                key=key,
                headers=list(headers),
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except KafkaError as exc:
            raise OutputError(f"producing to {topic}: {type(exc).__name__}: {exc}") from exc
        return future

    async def send_many(
        self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes | None]]
    ) -> list[asyncio.Future[Any]]:
        """Queue (key, value) records to one partition, packed into as few batches as fit.

        Much cheaper per record than :meth:`send`, which is what the state changelog needs:
        one write per interaction a batch changed.
        """
        acks: list[asyncio.Future[Any]] = []
        try:
            batch = self._producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    acks.append(await self._producer.send_batch(batch, topic, partition=partition))
                    batch = self._producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # a fresh one takes any
            if batch.record_count():
                acks.append(await self._producer.send_batch(batch, topic, partition=partition))
        except KafkaError as exc:
            raise OutputError(f"producing to {topic}: {type(exc).__name__}: {exc}") from exc
        return acks

    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (a heartbeat goes to each)."""
        try:
            found = await self._producer.partitions_for(topic)
        except KafkaError as exc:
            raise OutputError(f"partitions of {topic}: {type(exc).__name__}: {exc}") from exc
        return len(found)

    async def confirm(self, acks: Iterable[asyncio.Future[Any]]) -> None:
        """Wait until every send in ``acks`` was acknowledged; :class:`OutputError` if not."""
        try:
            await asyncio.gather(*acks)
        except KafkaError as exc:
            raise OutputError(f"not acknowledged: {type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Flush what is queued and close."""
        await self._producer.stop()


async def ensure_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    partitions: int,
    *,
    compact: bool = False,
    partitions_like: str | None = None,
) -> None:
    """Create the topics that do not exist yet (the daemon's outputs, the simulator's topic).

    ``partitions_like`` sizes them like another topic (a changelog must match its input
    partition for partition); ``compact`` makes them compacted.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            if partitions_like is not None:
                (described,) = await admin.describe_topics([partitions_like])
                if described["error_code"] or not described["partitions"]:
                    raise BrokerError(f"topic {partitions_like} does not exist (yet)")
                partitions = len(described["partitions"])
            # three copies where the cluster has three brokers; a one-broker cluster gets one
            brokers = len((await admin.describe_cluster())["brokers"])
            replicas = min(3, max(1, brokers))
            configs = {"cleanup.policy": "compact"} if compact else {}
            await admin.create_topics(
                [NewTopic(name, partitions, replicas, topic_configs=configs) for name in missing]
            )
            log.info(
                "topics_created",
                extra=fields(
                    topics=missing, partitions=partitions, replicas=replicas, compact=compact
                ),
            )
    except TopicAlreadyExistsError:
        pass  # another instance created it first
    except (KafkaError, OSError) as exc:
        raise await diagnose(settings, exc, "creating topics") from exc
    finally:
        await admin.close()


async def read_partition(
    settings: KafkaSettings, topic: str, partition: int, progress: Callable[[int], None]
) -> dict[bytes, bytes | None]:
    """The latest value per key of one partition, read from its start to its current end.

    Used to restore state from a compacted changelog; ``progress`` hears how many records
    were read after each fetch.
    """
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(settings),
    )
    tp = TopicPartition(topic, partition)
    latest: dict[bytes, bytes | None] = {}
    try:
        await consumer.start()
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for record in batch.get(tp, ()):
                if record.key is not None:
                    latest[record.key] = record.value
            progress(sum(len(records) for records in batch.values()))
    except KafkaError as exc:
        raise _translate(exc, f"reading {topic}[{partition}]") from exc
    finally:
        await consumer.stop()
    return latest


def compiled_records() -> bool:
    """The compiled aiokafka record parser is in use (pure Python is several times slower)."""
    return "_crecords" in default_records.DefaultRecordBatch.__module__
