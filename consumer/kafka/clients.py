"""The one module that speaks aiokafka: consumer, producer, admin, rebalance listener.

Everything aiokafka raises is translated here into :mod:`consumer.errors`, so the rest
of the service handles the project's own error tree. Facts about aiokafka that shape
this module (see CONTRIBUTING.md, "Kafka notes"):

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
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.record import default_records

from consumer.errors import (
    AuthenticationError,
    BrokerError,
    CredentialsError,
    HostnameMismatchError,
    OutputError,
    TlsHandshakeError,
    UntrustedCertificateError,
)
from consumer.kafka.oauth import TokenError, token_provider
from consumer.observe.logs import fields
from consumer.settings.schema import ConfigError, KafkaSettings

log = logging.getLogger(__name__)

# the shapes of consumer.daemon.ports, which this adapter satisfies without importing it
Partition = tuple[str, int]
Headers = Sequence[tuple[str, bytes]]
Batch = dict[Partition, list[ConsumerRecord[bytes, bytes]]]


_SASL_REFUSED: Final = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
)
# OpenSSL verify codes: the certificate names another host name / IP address
_NAME_MISMATCH: Final = frozenset({62, 64})
# OpenSSL verify codes: no CA we trust signed the certificate (issuer unknown, self-signed)
_ISSUER_UNKNOWN: Final = frozenset({2, 18, 19, 20, 21})


def _reason(exc: BaseException) -> str:
    """Why one connection failed, in a few words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message).rstrip(".")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, ssl.SSLEOFError)):
        return "connection closed by the other side"
    if isinstance(exc, TimeoutError):
        return "no answer"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _translate(
    exc: BaseException, doing: str, settings: KafkaSettings, address: str | None = None
) -> BrokerError:
    """The project's error for an aiokafka failure while ``doing`` something.

    A certificate we refuse or a login the broker refuses is an :class:`AuthenticationError`
    naming the cause and the setting to look at; anything else is a :class:`BrokerError`.
    """
    broker = "the broker" if address is None else f"the broker at {address}"
    if isinstance(exc, TokenError):  # no token to log in with, or the broker refused it
        return exc.translated(doing)
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH:
            return HostnameMismatchError(
                f"{doing}: host name mismatch: the certificate of {broker} is signed by a "
                f"trusted CA but names another host ({_reason(exc)}); list the broker "
                "in kafka.bootstrap_servers by a name its certificate carries (and advertise "
                "that name), or set kafka.ssl_check_hostname = false"
            )
        trusted = (
            f"kafka.ssl_cafile ({settings.ssl_cafile})"
            if settings.ssl_cafile
            else "the system's trust store (kafka.ssl_cafile is not set)"
        )
        if exc.verify_code in _ISSUER_UNKNOWN:
            return UntrustedCertificateError(
                f"{doing}: certificate not trusted: no CA in {trusted} signed the certificate "
                f"of {broker} ({_reason(exc)}); set kafka.ssl_cafile to the CA that "
                "signed the broker's certificate"
            )
        return UntrustedCertificateError(
            f"{doing}: certificate not valid: the certificate of {broker} failed "
            f"verification against {trusted} ({_reason(exc)})"
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        return TlsHandshakeError(
            f"{doing}: the TLS handshake with {broker} failed ({_reason(exc)}); check "
            f"that it is a TLS listener (kafka.security_protocol is {settings.security_protocol}) "
            "and, if it asks for a client certificate, kafka.ssl_certfile and kafka.ssl_keyfile"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return CredentialsError(
            f"{doing}: {broker} does not offer the SASL mechanism {settings.sasl_mechanism}; "
            "check kafka.sasl_mechanism",
            setting="kafka.sasl_mechanism",
        )
    if isinstance(exc, _SASL_REFUSED):
        return CredentialsError(
            f"{doing}: wrong SASL credentials: {broker} refused the login of user "
            f"{settings.sasl_username!r} with {settings.sasl_mechanism} ({exc}); check "
            "kafka.sasl_username and kafka.sasl_password"
        )
    return BrokerError(f"{doing}: {type(exc).__name__}: {exc}")


async def _connect_once(settings: KafkaSettings, address: str) -> BaseException | None:
    """Why one direct connection to ``address`` fails, or ``None`` when it succeeds."""
    host, colon, port = address.rpartition(":")
    options = client_options(settings)
    del options["bootstrap_servers"]
    try:
        conn = await create_conn(
            host.strip("[]") if colon else address,
            int(port) if colon else 9092,  # aiokafka's default port, as for the bootstrap
            request_timeout_ms=10_000,
            **options,
        )
    except (KafkaError, OSError, ValueError) as cause:  # ssl.SSLError and timeouts are OSErrors
        return cause
    conn.close()
    return None


async def diagnose(settings: KafkaSettings, exc: BaseException, doing: str) -> BrokerError:
    """The project's error for a failure to reach the cluster at all.

    aiokafka logs why each bootstrap server failed and raises a generic connection error;
    one direct connection to each server finds the cause again. A certificate we refuse
    or a login the broker refuses is final (:class:`AuthenticationError`); servers that
    cannot be reached are a cluster away, worth retrying.
    """
    if not isinstance(exc, KafkaConnectionError):
        return _translate(exc, doing, settings)
    addresses = [a.strip() for a in settings.bootstrap_servers.split(",") if a.strip()]
    causes = await asyncio.gather(*(_connect_once(settings, a) for a in addresses))
    failed = [(a, cause) for a, cause in zip(addresses, causes, strict=True) if cause is not None]
    for address, cause in failed:
        error = _translate(cause, doing, settings, address)
        if isinstance(error, AuthenticationError):
            return error
    if len(failed) < len(addresses):  # a server answers now: it was away for a moment
        return _translate(exc, doing, settings)
    reasons = "; ".join(f"{address}: {_reason(cause)}" for address, cause in failed)
    hint = ""
    hung_up = (ConnectionResetError, ssl.SSLEOFError, KafkaConnectionError)
    if any(isinstance(cause, hung_up) for _, cause in failed):
        # a listener that speaks another protocol hangs up on the first bytes
        hint = (
            f"; a listener that hangs up may speak another protocol than "
            f"kafka.security_protocol ({settings.security_protocol})"
        )
    return BrokerError(f"{doing}: no broker reachable at kafka.bootstrap_servers ({reasons}){hint}")


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by consumer, producer and admin client.

    A CA, certificate or key file that cannot be loaded is a :class:`ConfigError` naming
    its setting, raised when the first client is built.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        if settings.sasl_mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = token_provider(settings.oauth)
            return options
        assert settings.sasl_password is not None  # checked when settings load
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.reveal()
    return options


def _encrypted_key() -> str:
    # OpenSSL would otherwise prompt on a terminal for the key's password
    raise ConfigError("kafka.ssl_keyfile: the key is encrypted; give an unencrypted key")


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context verifying the broker against ``kafka.ssl_cafile`` (or the system's CAs)."""
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"kafka.ssl_cafile: cannot load CA certificates from {settings.ssl_cafile} "
            f"({_reason(exc)})"
        ) from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, _encrypted_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"kafka.ssl_certfile, kafka.ssl_keyfile: cannot load the client certificate "
                f"{settings.ssl_certfile} with its key ({_reason(exc)})"
            ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


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


class _Client:
    """Base of :class:`Source` and :class:`Sink`: the aiokafka client exists from start on.

    A client that never started is never built, so it never needs closing (aiokafka logs
    an unclosed one at ERROR); a TLS file that cannot load stops the construction.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._options = client_options(settings)
        self._started: Any = None  # the aiokafka consumer or producer, once started

    @property
    def _client(self) -> Any:
        if self._started is None:
            raise RuntimeError(f"{type(self).__name__} used before start()")
        return self._started

    async def _start(self, client: Any, doing: str) -> None:
        """Start ``client`` and keep it; closed again, and the cause diagnosed, if it fails."""
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            await client.stop()
            raise await diagnose(self.settings, exc, doing) from exc
        self._started = client

    async def stop(self) -> None:
        """Close: a consumer leaves its group, a producer flushes first. Nothing if unstarted."""
        if self._started is not None:
            await self._started.stop()


class Source(_Client):
    """The interactions topic, read in a consumer group with manual commits."""

    async def start(
        self,
        topics: list[str],
        revoked: Callable[[list[Partition]], Awaitable[None]],
        assigned: Callable[[list[Partition]], Awaitable[None]],
    ) -> None:
        """Connect and subscribe to ``topics``; the callbacks run on every rebalance.

        Does nothing once started: a first connection that failed half way is retried whole.
        """
        if self._started is not None:
            return
        settings = self.settings
        consumer = AIOKafkaConsumer(
            group_id=settings.group_id,
            group_instance_id=settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 10),
            max_partition_fetch_bytes=max(1_048_576, settings.max_record_bytes + 1024),
            **self._options,
        )
        await self._start(consumer, "connecting the consumer")
        consumer.subscribe(topics, listener=_Listener(revoked, assigned))

    async def fetch(self, timeout: float, limit: int) -> Batch:
        """One batch of records per partition; empty after ``timeout`` seconds of nothing."""
        try:
            batch = await self._client.getmany(timeout_ms=int(timeout * 1000), max_records=limit)
        except KafkaError as exc:
            raise _translate(exc, "fetching", self.settings) from exc
        return {(tp.topic, tp.partition): records for tp, records in batch.items()}

    async def position(self, partition: Partition) -> int:
        """The offset of the next record to read from ``partition``."""
        try:
            offset: int = await self._client.position(TopicPartition(*partition))
        except KafkaError as exc:
            raise _translate(exc, f"reading the position of {partition}", self.settings) from exc
        return offset

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching from ``partitions`` (while their state is restored)."""
        self._client.pause(*(TopicPartition(*tp) for tp in partitions))

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch from ``partitions`` again."""
        self._client.resume(*(TopicPartition(*tp) for tp in partitions))

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as of the last fetch, or ``None`` before one."""
        value: int | None = self._client.highwater(TopicPartition(*partition))
        return value

    def confirmed_at(self, partition: Partition) -> float | None:
        """Wall time of the last fetch answer for ``partition``, empty ones included.

        aiokafka notes it for every answer without error (``last_poll_timestamp``): while
        the broker is away it stops moving, and so does a caught-up partition's clock.
        """
        millis: int | None = self._client.last_poll_timestamp(TopicPartition(*partition))
        return None if millis is None else millis / 1000.0

    async def commit(self, offsets: Mapping[Partition, int]) -> bool:
        """Commit next-offsets; ``False`` when a rebalance got in the way (retried later)."""
        if not offsets:
            return True
        try:
            await self._client.commit({TopicPartition(*tp): o for tp, o in offsets.items()})
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
            await asyncio.wait_for(self._client.topics(), timeout)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True


class Sink(_Client):
    """A producer for the service's outputs (alerts, dead letters); sends are acknowledged."""

    async def start(self) -> None:
        """Connect; does nothing once started."""
        if self._started is not None:
            return
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # the daemon waits for the acks of every batch: lingering only delays
            max_batch_size=262_144,  # the state changelog writes thousands of records a batch
            max_request_size=max(1_048_576, self.settings.dead_letter_max_value_bytes + 65_536),
            **self._options,
        )
        await self._start(producer, "connecting the producer")

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
            future: asyncio.Future[Any] = await self._client.send(
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
        self,
        topic: str,
        partition: int,
        records: Sequence[tuple[bytes | None, bytes | None]],
        headers: Sequence[Headers] = (),
    ) -> list[asyncio.Future[Any]]:
        """Queue (key, value) records to one partition, packed into as few batches as fit.

        ``headers``, when given, has each record's headers, in order. Much cheaper per
        record than :meth:`send`, which is what the state changelog (one write per
        interaction a batch changed) and dead letters need.
        """
        acks: list[asyncio.Future[Any]] = []
        try:
            batch = self._client.create_batch()
            for i, (key, value) in enumerate(records):
                pairs = list(headers[i]) if headers else None
                if batch.append(key=key, value=value, timestamp=None, headers=pairs) is None:
                    # full: send it, and a fresh one takes any record
                    acks.append(await self._client.send_batch(batch, topic, partition=partition))
                    batch = self._client.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=pairs)
            if batch.record_count():
                acks.append(await self._client.send_batch(batch, topic, partition=partition))
        except KafkaError as exc:
            raise OutputError(f"producing to {topic}: {type(exc).__name__}: {exc}") from exc
        return acks

    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (a heartbeat goes to each)."""
        try:
            found = await self._client.partitions_for(topic)
        except KafkaError as exc:
            raise OutputError(f"partitions of {topic}: {type(exc).__name__}: {exc}") from exc
        if not found:  # never a count of 0: callers spread records over it
            raise OutputError(f"partitions of {topic}: none known")
        return len(found)

    async def confirm(self, acks: Iterable[asyncio.Future[Any]]) -> None:
        """Wait until every send in ``acks`` was acknowledged; :class:`OutputError` if not."""
        try:
            await asyncio.gather(*acks)
        except KafkaError as exc:
            raise OutputError(f"not acknowledged: {type(exc).__name__}: {exc}") from exc


async def ensure_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    partitions: int,
    *,
    compact: bool = False,
    partitions_like: str | None = None,
    setting: str = "",
) -> None:
    """Create the topics that do not exist yet (the daemon's outputs, the simulator's topic).

    ``partitions_like`` sizes them like another topic (a changelog must match its input
    partition for partition), and checks that those already there do: one that does not
    is a :class:`~consumer.settings.schema.ConfigError` naming ``setting`` (a group reused for
    another topic, say). ``compact`` makes them compacted. The other topic is never
    described before it exists: a broker that creates topics on first mention would
    create it with its default partition count, racing its real producer.
    """
    names = list(names)
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if partitions_like is not None:
            if partitions_like not in existing:
                raise BrokerError(f"topic {partitions_like} does not exist (yet)")
            present = [name for name in names if name in existing]
            counts = {
                t["topic"]: len(t["partitions"])
                for t in await admin.describe_topics([partitions_like, *present])
            }
            partitions = counts[partitions_like]
            for name in present:
                if counts[name] != partitions:
                    raise ConfigError(
                        f"{setting}: topic {name} has {counts[name]} partition(s) but "
                        f"{partitions_like} has {partitions}: they must match partition for "
                        "partition; give this topic a kafka.group_id of its own"
                    )
        if missing:
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


async def ensure_outputs(settings: KafkaSettings) -> None:
    """Create the daemon's missing output topics, when ``kafka.create_topics`` allows.

    Alerts and dead letters get three partitions; the repartition topic is sized like the
    input, and the state changelog like the topic whose partitions own interactions.
    """
    if not settings.create_topics:
        return
    await ensure_topics(settings, [settings.alerts_topic, settings.dead_letter_topic], 3)
    if settings.repartition:
        await ensure_topics(
            settings,
            [settings.repartition_topic_name],
            0,
            partitions_like=settings.topic,
            setting="kafka.repartition_topic",
        )
    if settings.persist_state:
        await ensure_topics(
            settings,
            [settings.state_topic_name],
            0,
            compact=True,
            partitions_like=settings.tracked_topic,
            setting="kafka.state_topic",
        )


class TopicFollower:
    """A compacted topic read from its start and then followed, outside any group.

    Every instance reads the whole topic (campaign settings concern every partition). A
    topic that does not exist yet (no poller publishes it) is looked for again every
    :data:`LOOK_AGAIN` seconds, without subscribing to it: aiokafka logs a missing
    subscribed topic at ERROR, and an absent poller is no error.
    """

    LOOK_AGAIN: Final = 10.0

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: Any = None
        self._looked = float("-inf")

    async def changes(self, timeout: float) -> list[tuple[bytes, bytes | None]]:
        """(key, value) of the records read since the last call, waiting up to ``timeout``."""
        try:
            if self._consumer is None and not await self._subscribe():
                await asyncio.sleep(timeout)
                return []
            batch = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        except (KafkaError, OSError) as exc:
            raise _translate(exc, f"following {self.topic}", self.settings) from exc
        return [(r.key, r.value) for rs in batch.values() for r in rs if r.key is not None]

    async def _subscribe(self) -> bool:
        """Subscribe once the topic exists; ``False`` while it does not (looked for anew)."""
        now = time.monotonic()
        if now - self._looked < self.LOOK_AGAIN:
            return False
        self._looked = now
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.settings),
        )
        try:
            await consumer.start()
            present = self.topic in await consumer.topics()
        except BaseException:
            await consumer.stop()  # never left unclosed: aiokafka would log it at ERROR
            raise
        if not present:
            await consumer.stop()
            return False
        consumer.subscribe([self.topic])
        self._consumer = consumer
        return True

    async def stop(self) -> None:
        """Close."""
        if self._consumer is not None:
            await self._consumer.stop()


class ChangelogReader:
    """Reads one partition of a compacted changelog back: the latest value per key."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic

    async def read(
        self,
        partition: int,
        progress: Callable[[int], None],
        offsets: dict[bytes, int] | None = None,
    ) -> dict[bytes, bytes | None]:
        """The latest value per key from the partition's start to its current end.

        ``progress`` hears how many records were read after each fetch; ``offsets``, when
        given, gets the offset of the latest value of each key already in it.
        """
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.settings),
        )
        tp = TopicPartition(self.topic, partition)
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
                        if offsets is not None and record.key in offsets:
                            offsets[record.key] = record.offset
                progress(sum(len(records) for records in batch.values()))
        except KafkaError as exc:
            raise _translate(exc, f"reading {self.topic}[{partition}]", self.settings) from exc
        finally:
            await consumer.stop()
        return latest


def compiled_records() -> bool:
    """The compiled aiokafka record parser is in use (pure Python is several times slower)."""
    return "_crecords" in default_records.DefaultRecordBatch.__module__
