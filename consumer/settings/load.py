"""Reading the settings: defaults, a TOML file, the environment, flags; errors named.

Precedence, lowest first: defaults, the TOML file (``--config``), environment variables,
command-line flags. Every setting has one dotted name (``stalls.watch_all_modes``); its
environment variable is ``INTERACTION_CONSUMER_`` plus the name in upper case with dots
as underscores (``INTERACTION_CONSUMER_STALLS_WATCH_ALL_MODES``); the conventional
``KAFKA_BOOTSTRAP_SERVERS``, ``GENESYS_CLIENT_ID`` and ``GENESYS_CLIENT_SECRET`` are read
too. An unknown or malformed setting raises
:class:`~consumer.settings.schema.ConfigError` naming it,
except the variables Kubernetes injects for a Service whose name starts with
``interaction-consumer`` (:func:`is_service_link`), which are not settings.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from consumer.settings.schema import ConfigError, Settings
from consumer.settings.secret import Secret

ENV_PREFIX: Final = "INTERACTION_CONSUMER_"
# the variables Genesys Cloud's own tools read, honoured like KAFKA_BOOTSTRAP_SERVERS
_CONVENTIONAL_ENV: Final = {
    "GENESYS_CLIENT_ID": "client_id",
    "GENESYS_CLIENT_SECRET": "client_secret",
}


# The "service links" Kubernetes puts in every pod for each Service of its namespace
# (unless the pod says enableServiceLinks: false), for a Service named
# interaction-consumer[-anything]: SERVICE_HOST, SERVICE_PORT[_<port name>], and the
# Docker-style PORT, PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]. Name and value must both have
# Kubernetes' shape: INTERACTION_CONSUMER_PORT=8080 is a typo, and is refused.
_LINK_URL: Final = re.compile(r"(?:tcp|udp|sctp)://(?P<ip>[0-9a-fA-F.:\[\]]+):[0-9]{1,5}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _is_link_url(text: str) -> bool:
    url = _LINK_URL.fullmatch(text)
    return url is not None and _is_ip(url["ip"])


_SERVICE: Final = "(?:[A-Z0-9_]+_)?"  # the rest of the Service's name, if any
_PORT_N: Final = "PORT_[0-9]+_(?:TCP|UDP|SCTP)"
# (name after the prefix, what its value must be); a name may read more than one way
# (a Service named interaction-consumer-service), so any reading that fits will do
_LINK_SHAPES: Final[tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...]] = (
    (re.compile(f"{_SERVICE}SERVICE_HOST"), _is_ip),
    (re.compile(f"{_SERVICE}SERVICE_PORT(?:_[A-Z0-9_]+)?"), str.isdigit),
    (re.compile(f"{_SERVICE}PORT(?:_[0-9]+_(?:TCP|UDP|SCTP))?"), _is_link_url),
    (re.compile(f"{_SERVICE}{_PORT_N}_PROTO"), lambda value: value in ("tcp", "udp", "sctp")),
    (re.compile(f"{_SERVICE}{_PORT_N}_PORT"), str.isdigit),
    (re.compile(f"{_SERVICE}{_PORT_N}_ADDR"), _is_ip),
)


def is_service_link(var: str, value: str) -> bool:
    """Whether ``var=value`` is a Kubernetes service-link variable (not a setting)."""
    if not var.startswith(ENV_PREFIX):
        return False
    name = var.removeprefix(ENV_PREFIX)
    return any(shape.fullmatch(name) and fits(value) for shape, fits in _LINK_SHAPES)


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
            if is_service_link(var, value):
                continue
            raise ConfigError(f"{var}: unknown setting (see docs/operate/configuration.md)")
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
