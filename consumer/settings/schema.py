"""One settings struct: every setting, its type, default and bounds. Plain data.

Its sections are here but for ``genesys`` (:mod:`consumer.settings.genesys`). The structs
forbid unknown fields (:class:`~consumer.settings.section.Section`) and validate what they
can alone (ranges, formats, settings that need each other); :mod:`consumer.settings.load`
reads them from a TOML file, the environment and flags. An unknown or malformed setting
stops the start with a :class:`ConfigError` that names it: configuration typos must fail
loudly, unlike wire data, where unknown fields are expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal

import msgspec

from consumer.errors import ServiceError
from consumer.settings.genesys import GenesysSettings
from consumer.settings.secret import Secret
from consumer.settings.section import Positive, Section


class ConfigError(ServiceError):
    """A setting is unknown or malformed; the message names it."""


def non_finite(settings: object, prefix: str = "") -> tuple[str, float] | None:
    """The first setting under ``settings`` whose number is ``inf`` or NaN, and its value.

    The one check of every number setting, present and future, nested in sections and
    tables (``stalls.campaigns.<id>.<rule>``): bounds written as ``ge=0`` or ``gt=0``
    let ``inf`` through (TOML spells it), and NaN compares false with everything, so
    neither may reach the code that adds, sleeps or schedules with a setting.
    """
    if isinstance(settings, msgspec.Struct):
        items = [(f.name, getattr(settings, f.name)) for f in msgspec.structs.fields(settings)]
    elif isinstance(settings, dict):
        items = [(str(key), value) for key, value in settings.items()]
    elif isinstance(settings, float) and not math.isfinite(settings):
        return prefix.rstrip("."), settings
    else:
        return None
    for name, value in items:
        found = non_finite(value, f"{prefix}{name}.")
        if found is not None:
            return found
    return None


# A stall threshold beyond a year is a typo (or nan/inf), not a policy: no interaction is
# tracked that long, and the stall's due time must stay a time that can be formatted.
MAX_THRESHOLD_SECONDS: Final = 365 * 86400.0


def valid_threshold(seconds: float) -> bool:
    """``seconds`` is a stall threshold: a number from 0 (rule off) to a year (not nan)."""
    return 0 <= seconds <= MAX_THRESHOLD_SECONDS


def _check_thresholds(thresholds: Mapping[str, float], where: str) -> None:
    for rule, seconds in thresholds.items():
        if not valid_threshold(seconds):
            raise ValueError(
                f"{where}.{rule} = {seconds}: seconds must be from 0 to "
                f"{MAX_THRESHOLD_SECONDS:.0f} (a year)"
            )


class StallSettings(Section):
    """Stall thresholds in seconds per rule (0 switches one off), per-campaign overrides."""

    thresholds: dict[str, float] = {}
    campaigns: dict[str, dict[str, float]] = {}
    watch_all_modes: bool = False
    # the created rule for interactions whose records name no list (no genesys.bucket
    # header: a producer other than the poller), where a scheduled callback looks stuck
    created_without_bucket: bool = True
    # a campaign whose previews auto-place after previewTimeOutSeconds (the campaigns topic)
    # and that has no explicit override: its previewing threshold is that timeout plus this
    preview_timeout_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0

    def __post_init__(self) -> None:
        # rule names are checked where the rules are built (consumer.daemon.policy): settings
        # are data, and do not know the engine's rules
        _check_thresholds(self.thresholds, "stalls.thresholds")
        for campaign, overrides in self.campaigns.items():
            _check_thresholds(overrides, f"stalls.campaigns.{campaign}")


class TrackingSettings(Section):
    """Bounds on tracked interactions: idle time-out, a cap per partition, a memory budget.

    ``memory_limit_bytes`` bounds the interactions of the whole process; unset, it is
    derived from the container's memory limit (:mod:`consumer.daemon.memory`), and with no limit
    there only the cap per partition holds.
    """

    ttl_seconds: Annotated[float, msgspec.Meta(gt=0)] = 4 * 3600.0
    max_interactions: Positive = 1_000_000
    memory_limit_bytes: Annotated[int, msgspec.Meta(ge=1 << 20)] | None = None


class MetricsSettings(Section):
    """Bounds on metric label values."""

    max_campaign_labels: Positive = 200


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class OAuthSettings(Section):
    """Where ``sasl_mechanism = "OAUTHBEARER"`` gets its tokens (docs/operate/security.md).

    ``oidc``: OAuth client credentials at ``token_url`` (Confluent Cloud, Keycloak, Azure
    AD...). ``aws-msk-iam``: Amazon MSK's IAM tokens, signed for ``region`` with the
    credentials of the standard AWS chain (needs ``interaction-consumer[msk]``).
    """

    provider: Literal["oidc", "aws-msk-iam"] = "oidc"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    scope: str | None = None
    # SASL extensions sent with the token, such as Confluent Cloud's logicalCluster and
    # identityPoolId
    extensions: dict[str, str] = {}
    region: str | None = None
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0

    def missing(self) -> str | None:
        """The first setting the chosen provider needs and lacks (its dotted name), or None."""
        needed = {
            "oidc": ("token_url", "client_id", "client_secret"),
            "aws-msk-iam": ("region",),
        }[self.provider]
        for name in needed:
            if getattr(self, name) is None:
                return f"kafka.oauth.{name}"
        return None

    def __post_init__(self) -> None:
        if self.token_url is not None:
            scheme, sep, rest = self.token_url.partition("://")
            if scheme not in ("http", "https") or not sep or not rest:
                raise ValueError(
                    f"kafka.oauth.token_url {self.token_url!r} must be an http:// or https:// URL"
                )
        for key, value in self.extensions.items():
            # RFC 7628: a key is letters only; a value has no control characters
            if not key.isascii() or not key.isalpha() or key == "auth":
                raise ValueError(f"kafka.oauth.extensions: {key!r} is not a SASL extension name")
            if any(ord(c) < 0x20 for c in value):
                raise ValueError(f"kafka.oauth.extensions.{key}: control characters")


class KafkaSettings(Section):
    """Where to read, where to write, and how to authenticate.

    ``bootstrap_servers`` also reads the conventional ``KAFKA_BOOTSTRAP_SERVERS``.
    """

    bootstrap_servers: str = "localhost:9092"
    topic: str = "campaign-interactions"
    group_id: str = "interaction-consumer"
    # static membership: a stable id per instance avoids a rebalance on each restart
    group_instance_id: str | None = None
    client_id: str = "interaction-consumer"
    alerts_topic: str = "campaign-interactions.alerts"
    dead_letter_topic: str = "campaign-interactions.dead-letter"
    create_topics: bool = True
    # tracked state survives restarts and rebalances in this compacted topic
    persist_state: bool = True
    state_topic: str | None = None  # default: "<group_id>.state"
    # a partition's changed state is saved this often (0: with every batch), at moments of
    # its own, each interaction once however often it changed meanwhile; offsets are
    # committed only as far as saved state goes, so a crash replays at most this much more
    state_save_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 5.0
    # re-key the input by interaction id through this topic, for producers that key badly
    repartition: bool = False
    repartition_topic: str | None = None  # default: "<group_id>.repartition"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_batch_records: Positive = 5000
    # larger values are dead-lettered unread; the copy is cut to what a broker accepts
    max_record_bytes: Positive = 1_000_000
    dead_letter_max_value_bytes: Positive = 900_000
    session_timeout_ms: Positive = 45_000
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    oauth: OAuthSettings = msgspec.field(default_factory=OAuthSettings)

    @property
    def state_topic_name(self) -> str:
        """The changelog topic of this consumer group's state."""
        return self.state_topic or f"{self.group_id}.state"

    @property
    def repartition_topic_name(self) -> str:
        """The internal topic re-keyed by interaction id (repartition mode)."""
        return self.repartition_topic or f"{self.group_id}.repartition"

    @property
    def tracked_topic(self) -> str:
        """The topic whose partitions own interactions: the repartition topic, if in use."""
        return self.repartition_topic_name if self.repartition else self.topic

    def __post_init__(self) -> None:
        if not self.security_protocol.startswith("SASL_"):
            return
        if self.sasl_mechanism == "OAUTHBEARER":
            missing = self.oauth.missing()
            if missing is not None:
                raise ValueError(
                    f"sasl_mechanism OAUTHBEARER with kafka.oauth.provider "
                    f"{self.oauth.provider} needs {missing}"
                )
            return
        needed = ("sasl_mechanism", "sasl_username", "sasl_password")
        missing_names = [name for name in needed if getattr(self, name) is None]
        if missing_names:
            raise ValueError(
                f"security_protocol {self.security_protocol} needs kafka.{missing_names[0]}"
            )


class HttpLimits(Section):
    """How much the HTTP port gives any one client, and all of them together.

    The port is reachable by anyone on the pod network: without these, a few hundred
    slow or oversized requests hold file descriptors (the broker connections need them
    too) and memory. Worst-case memory for request heads is about ``max_connections`` x
    ``max_headers`` x ``max_header_bytes``.
    """

    # from accept (or a kept-alive connection's next first byte) to the answer's last
    # byte; a client trickling header lines does not extend it
    request_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    # open connections at once; at the cap the oldest still waiting for its request is
    # closed to make room, or the new one if every connection is being answered
    max_connections: Annotated[int, msgspec.Meta(ge=2, le=10_000)] = 64
    # a kept-alive connection with no request for this long is closed
    keepalive_seconds: Annotated[float, msgspec.Meta(gt=0)] = 75.0
    max_request_line_bytes: Annotated[int, msgspec.Meta(ge=256)] = 8190  # longer: 400
    max_header_bytes: Annotated[int, msgspec.Meta(ge=256)] = 8190  # one header line; longer: 431
    max_headers: Annotated[int, msgspec.Meta(ge=8)] = 32  # more: 431


class HttpSettings(HttpLimits):
    """The one port serving /metrics, /healthz, /readyz and /stalled."""

    host: str = "0.0.0.0"  # noqa: S104 - a container serves its probes on all interfaces
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080


class RuntimeSettings(Section):
    """Timing of the daemon's loop, readiness and shutdown."""

    tick_seconds: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.25
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    # not ready when a partition with lag has not moved for this long
    stuck_after_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    output_retry_max_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # a record timestamp further ahead of the wall clock than this does not move time
    max_clock_skew_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    # how late past its interval a source's heartbeat may be before the source counts as
    # silent (unset: one more interval); time never runs past what the source vouched for
    source_grace_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # heartbeats missing this long (at least interval plus grace) raise one source_silent
    source_silent_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # heartbeat sources gone for good: their heartbeats ignored, saved state dropped, a
    # firing source_silent resolved as "retired"
    retired_sources: list[str] = []
    # heartbeat sources every partition must hear from (the poller's genesys.source_id):
    # one that never beat stops the clock and is reported silent source_silent_seconds
    # after the partition is taken on, like one that stopped (a poller that never worked)
    expected_sources: list[str] = []

    def __post_init__(self) -> None:
        both = sorted(set(self.expected_sources) & set(self.retired_sources))
        if both:
            raise ConfigError(
                f"runtime.expected_sources: {', '.join(both)} also in runtime.retired_sources"
            )


# label names of the alerts the service posts, which static labels must not replace
ALERT_LABELS: Final = frozenset(
    {"alertname", "severity", "campaign", "stage", "rule", "interaction_id", "topic", "source"}
)
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class AlertmanagerSettings(Section):
    """Where per-interaction stalls are posted (Alertmanager API v2); none by default.

    ``labels`` are added to every alert posted (``{ namespace = "dialer", org = "acme" }``):
    what routes and inhibitions tell one deployment's alerts from another's by.
    """

    urls: list[str] = []
    labels: dict[str, str] = {}
    resend_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    queue_size: Positive = 10_000
    max_active: Positive = 100_000

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"alertmanager url {url!r} must start with http:// or https://")
        for name in self.labels:
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"alertmanager.labels: {name!r} is not a label name")
            if name in ALERT_LABELS:
                raise ValueError(f"alertmanager.labels: {name!r} is set by the service itself")


class LogSettings(Section):
    """Logs go to stdout: JSON for machines, text for people."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(Section):
    """Everything the service can be told."""

    stalls: StallSettings = msgspec.field(default_factory=StallSettings)
    tracking: TrackingSettings = msgspec.field(default_factory=TrackingSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    runtime: RuntimeSettings = msgspec.field(default_factory=RuntimeSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    alertmanager: AlertmanagerSettings = msgspec.field(default_factory=AlertmanagerSettings)
    genesys: GenesysSettings = msgspec.field(default_factory=GenesysSettings)

    def __post_init__(self) -> None:
        found = non_finite(self)
        if found is not None:
            name, value = found
            raise ValueError(f"{name} = {value}: must be a finite number")
        if self.runtime.expected_sources and self.kafka.repartition:
            # re-keyed partitions get no heartbeats: an expected source would be silent there
            # for ever, and no stall of theirs judged
            raise ValueError(
                "runtime.expected_sources: kafka.repartition re-keys records without their "
                "heartbeats, so no source can be expected"
            )
