"""One settings struct, read from a TOML file, the environment and flags, then validated.

Precedence, lowest first: defaults, the TOML file (``--config``), environment variables,
command-line flags. Every setting has one dotted name (``stalls.watch_all_modes``); its
environment variable is ``INTERACTION_CONSUMER_`` plus the name in upper case with dots
as underscores (``INTERACTION_CONSUMER_STALLS_WATCH_ALL_MODES``). An unknown or malformed
setting stops the start with a :class:`ConfigError` that names it: configuration typos
must fail loudly, unlike wire data, where unknown fields are expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec

from consumer.stalls import RULES, StallPolicy
from consumer.tracker import Limits

ENV_PREFIX: Final = "INTERACTION_CONSUMER_"

Seconds = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(Exception):
    """A setting is unknown or malformed; the message names it."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


def _check_rules(thresholds: Mapping[str, float], where: str) -> None:
    unknown = sorted(set(thresholds) - set(RULES))
    if unknown:
        raise ValueError(
            f"unknown stall rule {unknown[0]!r} in {where} (known: {', '.join(RULES)})"
        )


class StallSettings(_Section):
    """Stall thresholds in seconds per rule (0 switches one off), per-campaign overrides."""

    thresholds: dict[str, Seconds] = {}
    campaigns: dict[str, dict[str, Seconds]] = {}
    watch_all_modes: bool = False

    def __post_init__(self) -> None:
        _check_rules(self.thresholds, "stalls.thresholds")
        for campaign, overrides in self.campaigns.items():
            _check_rules(overrides, f"stalls.campaigns.{campaign}")


class TrackingSettings(_Section):
    """Bounds on tracked interactions: idle time-out and a cap, per partition."""

    ttl_seconds: Annotated[float, msgspec.Meta(gt=0)] = 4 * 3600.0
    max_interactions: Positive = 1_000_000


class MetricsSettings(_Section):
    """Bounds on metric label values."""

    max_campaign_labels: Positive = 200


class Settings(_Section):
    """Everything the service can be told."""

    stalls: StallSettings = StallSettings()
    tracking: TrackingSettings = TrackingSettings()
    metrics: MetricsSettings = MetricsSettings()


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


def _parse_env_value(var: str, value: str, tp: Any) -> Any:
    """Environment values are strings; scalars are parsed, tables are given as TOML."""
    if tp is str:
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
    tree = _deep_merge(tree, _from_env(env or {}))
    tree = _deep_merge(tree, overrides or {})
    try:
        return msgspec.convert(tree, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(_name_setting(str(exc))) from None


def _name_setting(message: str) -> str:
    """Turn msgspec's ``... - at `$.stalls.thresholds```` into ``stalls.thresholds: ...``."""
    text, _, where = message.partition(" - at `$")
    where = where.rstrip("`").lstrip(".")
    if text.startswith("Object contains unknown field"):
        field = text.split("`")[1]
        return f"{where + '.' if where else ''}{field}: unknown setting"
    return f"{where or 'settings'}: {text}"


def stall_policy(settings: Settings) -> StallPolicy:
    """The stall rules the settings describe."""
    stalls = settings.stalls
    return StallPolicy(stalls.thresholds, stalls.campaigns, watch_all_modes=stalls.watch_all_modes)


def limits(settings: Settings) -> Limits:
    """The tracker bounds the settings describe."""
    return Limits(settings.tracking.ttl_seconds, settings.tracking.max_interactions)
