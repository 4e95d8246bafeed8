"""One settings struct, read from a TOML file, the environment and flags, then validated.

Precedence, lowest first: defaults, the TOML file (``--config``), environment variables,
command-line flags. Every setting has one dotted name (``stalls.watch_all_modes``); its
environment variable is ``INTERACTION_CONSUMER_`` plus the name in upper case with dots
as underscores (``INTERACTION_CONSUMER_STALLS_WATCH_ALL_MODES``). An unknown or malformed
setting stops the start with a :class:`ConfigError` that names it: configuration typos
must fail loudly, unlike wire data, where unknown fields are expected.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from consumer.errors import ServiceError

ENV_PREFIX: Final = "INTERACTION_CONSUMER_"
# the variables Genesys Cloud's own tools read, honoured like KAFKA_BOOTSTRAP_SERVERS
_CONVENTIONAL_ENV: Final = {
    "GENESYS_CLIENT_ID": "client_id",
    "GENESYS_CLIENT_SECRET": "client_secret",
}

Positive = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(ServiceError):
    """A setting is unknown or malformed; the message names it."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


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


class StallSettings(_Section):
    """Stall thresholds in seconds per rule (0 switches one off), per-campaign overrides."""

    thresholds: dict[str, float] = {}
    campaigns: dict[str, dict[str, float]] = {}
    watch_all_modes: bool = False
    # a campaign whose previews auto-place after previewTimeOutSeconds (the campaigns topic)
    # and that has no explicit override: its previewing threshold is that timeout plus this
    preview_timeout_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0

    def __post_init__(self) -> None:
        # rule names are checked where the rules are built (consumer.policy): settings
        # are data, and do not know the engine's rules
        _check_thresholds(self.thresholds, "stalls.thresholds")
        for campaign, overrides in self.campaigns.items():
            _check_thresholds(overrides, f"stalls.campaigns.{campaign}")


class TrackingSettings(_Section):
    """Bounds on tracked interactions: idle time-out and a cap, per partition."""

    ttl_seconds: Annotated[float, msgspec.Meta(gt=0)] = 4 * 3600.0
    max_interactions: Positive = 1_000_000


class MetricsSettings(_Section):
    """Bounds on metric label values."""

    max_campaign_labels: Positive = 200


class Secret(str):
    """A string that never shows itself in logs, reprs or error messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """The secret itself, for the one place that must hand it to a client."""
        return str.__str__(self)


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(_Section):
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
        if self.security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs kafka.{missing[0]}"
                )


_HOST: Final = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _base_url(url: str, name: str) -> str:
    """``url`` without a trailing slash, checked to be an http(s) URL with a host."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if scheme not in ("http", "https") or not sep or not host:
        raise ValueError(f"genesys.{name} {url!r} must be an http:// or https:// URL")
    return url.rstrip("/")


class GenesysSettings(_Section):
    """The Genesys Cloud org the ``poll`` command reads (see README, Connecting Genesys Cloud).

    ``client_id`` and ``client_secret`` also read ``GENESYS_CLIENT_ID`` and
    ``GENESYS_CLIENT_SECRET``. ``region`` (``mypurecloud.ie``) means the API base
    ``https://api.<region>``; ``api_base`` sets it directly (not both). The login base is
    the API base with ``api.`` replaced by ``login.`` unless ``login_base`` says otherwise;
    an API base whose host does not start with ``api.`` (a double on 127.0.0.1) logs in
    on itself.
    """

    client_id: str | None = None
    client_secret: Secret | None = None
    region: str | None = None
    api_base: str | None = None
    login_base: str | None = None
    # the campaigns to poll; none: every preview campaign that is on or stopping
    campaigns: list[str] = []
    interval_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # the platform allows 300 requests a minute per client; stay under it
    requests_per_minute: Positive = 240
    # how often the campaigns (discovered, or their settings) are read again
    discovery_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # the source id heartbeats carry
    source_id: str = "genesys-poller"

    def __post_init__(self) -> None:
        if self.region is not None and self.api_base is not None:
            raise ValueError("genesys.region and genesys.api_base exclude each other")
        if self.region is not None and not _HOST.fullmatch(self.region):
            raise ValueError(
                f"genesys.region {self.region!r} must be a host name such as mypurecloud.ie"
            )
        if self.api_base is not None:
            self.api_base = _base_url(self.api_base, "api_base")
        if self.login_base is not None:
            self.login_base = _base_url(self.login_base, "login_base")

    @property
    def api_url(self) -> str | None:
        """The Platform API base URL, or ``None`` when neither region nor api_base is set."""
        if self.api_base is not None:
            return self.api_base
        return None if self.region is None else f"https://api.{self.region}"

    @property
    def login_url(self) -> str | None:
        """The OAuth base URL: ``login_base``, else the API base with ``api.`` -> ``login.``."""
        if self.login_base is not None:
            return self.login_base
        api = self.api_url
        if api is None:
            return None
        scheme, _, rest = api.partition("://")
        return f"{scheme}://login.{rest[4:]}" if rest.startswith("api.") else api


class HttpLimits(_Section):
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


class RuntimeSettings(_Section):
    """Timing of the daemon's loop, readiness and shutdown."""

    tick_seconds: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.25
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    # not ready when a partition with lag has not moved for this long
    stuck_after_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    output_retry_max_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # a record timestamp further ahead of the wall clock than this does not move time
    max_clock_skew_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    # heartbeat partitions: how far past a source's last heartbeat time may run (unset:
    # twice the source's heartbeat interval, at least 20 s)
    source_grace_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # heartbeats missing this long raise one source_silent alert
    source_silent_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0


class AlertmanagerSettings(_Section):
    """Where per-interaction stalls are posted (Alertmanager API v2); none by default."""

    urls: list[str] = []
    resend_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    queue_size: Positive = 10_000
    max_active: Positive = 100_000

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"alertmanager url {url!r} must start with http:// or https://")


class LogSettings(_Section):
    """Logs go to stdout: JSON for machines, text for people."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(_Section):
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


def _leaf_types(struct: type[msgspec.Struct], prefix: str = "") -> dict[str, Any]:
    """Dotted setting name -> type, for every scalar setting (what env vars can set)."""
    names: dict[str, Any] = {}
    for f in msgspec.structs.fields(struct):
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
            names.update(_leaf_types(f.type, f"{prefix}{f.name}."))
        else:
            names[prefix + f.name] = f.type
    return names


def env_name(setting: str) -> str:
    """The environment variable that sets a dotted setting."""
    return ENV_PREFIX + setting.replace(".", "_").upper()


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    leaves = _leaf_types(Settings)
    known = {env_name(name): name for name in leaves}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        if var not in known:
            raise ConfigError(f"{var}: unknown setting (see README, Configuration)")
        name = known[var]
        _set(tree, name, _parse_env_value(var, value, leaves[name]))
    return tree


def _takes_text(tp: Any) -> bool:
    """Whether a setting of type ``tp`` is given as plain text (str, Literal of str)."""
    if isinstance(tp, type):
        return issubclass(tp, str)
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        return all(isinstance(a, str) for a in args)
    if typing.get_origin(tp) is Annotated:
        return _takes_text(args[0])
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    return union and any(_takes_text(a) for a in args)


def _parse_env_value(var: str, value: str, tp: Any) -> Any:
    """Read one environment value for a setting of type ``tp``.

    Text settings take the string as it is; others read it as a TOML value (numbers,
    booleans, ``{ inline = "tables" }``).
    """
    if _takes_text(tp):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"{var}: cannot read {value!r} as a value") from None


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate the settings; raise :class:`ConfigError` naming a bad setting."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    env = env or {}
    tree = _deep_merge(tree, _from_env(env))
    if "KAFKA_BOOTSTRAP_SERVERS" in env and env_name("kafka.bootstrap_servers") not in env:
        tree = _deep_merge(tree, {"kafka": {"bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"]}})
    for var, setting in _CONVENTIONAL_ENV.items():
        if var in env and env_name(f"genesys.{setting}") not in env:
            tree = _deep_merge(tree, {"genesys": {setting: env[var]}})
    tree = _deep_merge(tree, overrides or {})
    try:
        return msgspec.convert(tree, Settings, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        raise ConfigError(_name_setting(str(exc))) from None


def _decode_custom(tp: type, value: Any) -> Any:
    if tp is Secret and isinstance(value, str):
        return Secret(value)
    raise TypeError(f"expected a string for a {tp.__name__}")  # msgspec reports it with the path


def _name_setting(message: str) -> str:
    """Turn msgspec's ``... - at `$.stalls.thresholds```` into ``stalls.thresholds: ...``."""
    text, _, where = message.partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    if text.startswith("Object contains unknown field"):
        field = text.split("`")[1]
        return f"{where + '.' if where else ''}{field}: unknown setting"
    return f"{where or 'settings'}: {text}"
