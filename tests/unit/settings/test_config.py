"""Settings: file, environment and flags, validated, with errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from consumer.daemon.policy import stall_policy
from consumer.daemon.policy import tracker_limits as limits
from consumer.engine.stalls import DEFAULT_THRESHOLDS
from consumer.settings.load import env_name, load_settings
from consumer.settings.schema import ConfigError, Settings
from consumer.settings.secret import Secret

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    """A settings file holding ``text``."""
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    """With nothing given, the documented defaults hold."""
    s = load_settings()
    assert s.kafka.topic == "campaign-interactions"
    assert s.tracking.max_interactions == 1_000_000
    assert stall_policy(s).defaults == DEFAULT_THRESHOLDS


def test_example_file_lists_the_defaults() -> None:
    """deploy/config.example.toml loads and equals the defaults, so the docs cannot drift."""
    example = load_settings(ROOT / "deploy" / "config.example.toml")
    assert example.stalls.thresholds == DEFAULT_THRESHOLDS
    defaults = load_settings()
    for section in ("kafka", "tracking", "metrics", "http", "runtime", "log", "alertmanager"):
        assert getattr(example, section) == getattr(defaults, section), section


def test_example_file_names_every_setting() -> None:
    """Every setting appears in deploy/config.example.toml, if only commented out."""
    text = (ROOT / "deploy" / "config.example.toml").read_text()
    listed: set[str] = set()
    section = ""
    for line in text.splitlines():
        entry = line.removeprefix("#").strip()
        if entry.startswith("["):
            section = entry.strip("[]").split("]")[0]
            listed.add(section.split('."')[0])  # a table setting, e.g. stalls.campaigns."<id>"
        elif " = " in entry:
            listed.add(f"{section}.{entry.split(' = ')[0]}")
    for part in msgspec.structs.fields(Settings):
        assert isinstance(part.type, type)
        for setting in msgspec.structs.fields(part.type):
            assert f"{part.name}.{setting.name}" in listed, f"{part.name}.{setting.name}"


def test_file_env_and_flags_in_order_of_precedence(tmp_path: Path) -> None:
    """A flag beats the environment, which beats the file, which beats the default."""
    path = write(tmp_path, '[kafka]\ntopic = "from-file"\ngroup_id = "file-group"\n')
    env = {"INTERACTION_CONSUMER_KAFKA_TOPIC": "from-env"}
    s = load_settings(path, env=env, overrides={"kafka": {"group_id": "flag-group"}})
    assert (s.kafka.topic, s.kafka.group_id) == ("from-env", "flag-group")


def test_environment_values_are_typed() -> None:
    """Numbers, booleans and inline tables are read from environment strings."""
    s = load_settings(
        env={
            "INTERACTION_CONSUMER_STALLS_WATCH_ALL_MODES": "true",
            "INTERACTION_CONSUMER_TRACKING_MAX_INTERACTIONS": "5",
            "INTERACTION_CONSUMER_STALLS_THRESHOLDS": "{ previewing = 10, placed = 0 }",
            "INTERACTION_CONSUMER_KAFKA_TOPIC": "123",  # text stays text
            "KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
        }
    )
    assert s.stalls.watch_all_modes is True
    assert limits(s).max_interactions == 5
    assert stall_policy(s).threshold(None, "previewing") == 10
    assert s.kafka.topic == "123"
    assert s.kafka.bootstrap_servers == "broker:9093"


def test_campaign_overrides(tmp_path: Path) -> None:
    """A campaign table overrides only that campaign's thresholds."""
    path = write(tmp_path, '[stalls.campaigns."slow-campaign"]\npreviewing = 900\n')
    policy = stall_policy(load_settings(path))
    assert policy.threshold("slow-campaign", "previewing") == 900
    assert policy.threshold("other", "previewing") == DEFAULT_THRESHOLDS["previewing"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[stalls]\nwatch_all_mode = true\n", "stalls.watch_all_mode"),
        ("[stall]\nx = 1\n", "stall"),
        ("[tracking]\nmax_interactions = 'many'\n", "tracking.max_interactions"),
        ("[stalls.thresholds]\nplaced = -1\n", "stalls.thresholds"),
        ("[stalls.thresholds]\nplaced = nan\n", "stalls.thresholds.placed"),
        ("[stalls.thresholds]\nrouted = inf\n", "stalls.thresholds.routed"),
        ("[stalls.thresholds]\nconnected = 31536001\n", "stalls.thresholds.connected"),
        ('[stalls.campaigns."c"]\nplaced = -inf\n', "stalls.campaigns.c.placed"),
        ('[stalls.campaigns."c"]\ncreated = 1e12\n', "stalls.campaigns.c.created"),
        ("[http]\nport = 70000\n", "http.port"),
        ('[kafka]\nsecurity_protocol = "SASL_SSL"\n', "kafka.sasl_mechanism"),
        ("this is = not = toml\n", "not valid TOML"),
    ],
)
def test_bad_file_settings_are_named(tmp_path: Path, text: str, names: str) -> None:
    """Each kind of bad setting stops loading with a message naming it."""
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load_settings(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[stalls.thresholds]\nbogus = 5\n", "stalls.thresholds: unknown stall rule 'bogus'"),
        ('[stalls.campaigns."c"]\nnope = 5\n', "stalls.campaigns.c: unknown stall rule 'nope'"),
    ],
)
def test_unknown_stall_rules_stop_the_start_named(tmp_path: Path, text: str, names: str) -> None:
    """A threshold for a rule that does not exist stops building the rules, naming the setting."""
    settings = load_settings(write(tmp_path, text))
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        stall_policy(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"INTERACTION_CONSUMER_KAFKA_TOPC": "x"}, "INTERACTION_CONSUMER_KAFKA_TOPC"),
        ({"INTERACTION_CONSUMER_TRACKING_TTL_SECONDS": "soon"}, "TRACKING_TTL_SECONDS"),
        ({"INTERACTION_CONSUMER_LOG_LEVEL": "LOUD"}, "log.level"),
        ({"INTERACTION_CONSUMER_STALLS_THRESHOLDS": "{ placed = nan }"}, "thresholds.placed"),
    ],
)
def test_bad_environment_settings_are_named(env: dict[str, str], names: str) -> None:
    """A misspelt or unreadable variable is named in the error."""
    with pytest.raises(ConfigError, match=names):
        load_settings(env=env)


def test_a_threshold_of_a_year_is_the_most_allowed(tmp_path: Path) -> None:
    """Thresholds from 0 to exactly a year load; the bound is inclusive."""
    settings = load_settings(
        write(tmp_path, "[stalls.thresholds]\nplaced = 31536000\nrouted = 0\n")
    )
    assert stall_policy(settings).threshold(None, "placed") == 365 * 86400


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    """A missing settings file is an error naming the file."""
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_password_never_shows() -> None:
    """The SASL password is a Secret: repr, str and the settings' repr hide it."""
    s = load_settings(
        env={
            "INTERACTION_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "INTERACTION_CONSUMER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "INTERACTION_CONSUMER_KAFKA_SASL_USERNAME": "svc",
            "INTERACTION_CONSUMER_KAFKA_SASL_PASSWORD": "hunter2",
        }
    )
    password = s.kafka.sasl_password
    assert isinstance(password, Secret)
    assert password.reveal() == "hunter2"
    for shown in (repr(s), str(password), f"{password}", repr(password)):
        assert "hunter2" not in shown


def test_created_without_bucket_reaches_the_policy_and_a_bad_value_is_named() -> None:
    """stalls.created_without_bucket defaults to true, is set from the environment, is checked."""
    assert stall_policy(load_settings()).created_without_bucket is True
    env = {"INTERACTION_CONSUMER_STALLS_CREATED_WITHOUT_BUCKET": "false"}
    assert stall_policy(load_settings(env=env)).created_without_bucket is False
    with pytest.raises(ConfigError, match="STALLS_CREATED_WITHOUT_BUCKET"):
        load_settings(env={"INTERACTION_CONSUMER_STALLS_CREATED_WITHOUT_BUCKET": "maybe"})


def float_settings() -> list[str]:
    """The dotted name of every number setting that takes a float."""
    names = []

    def walk(struct: type[msgspec.Struct], prefix: str) -> None:
        for f in msgspec.structs.fields(struct):
            if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
                walk(f.type, f"{prefix}{f.name}.")
            elif "float" in str(f.type) and "dict" not in str(f.type):
                names.append(prefix + f.name)

    walk(Settings, "")
    return names


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("name", float_settings())
def test_every_float_setting_refuses_inf_and_nan_by_name(name: str, value: str) -> None:
    """Each float setting given inf, -inf or NaN (TOML spells them) stops the start, named."""
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        load_settings(env={env_name(name): value})


def test_the_walk_finds_the_float_settings() -> None:
    """The list above is the settings' floats (an empty one would test nothing)."""
    assert {"stalls.preview_timeout_grace_seconds", "runtime.source_grace_seconds"} <= set(
        float_settings()
    )


def test_a_campaign_threshold_cannot_be_inf_either() -> None:
    """stalls.campaigns.<id>.<rule> = inf is refused, named, like the default thresholds."""
    with pytest.raises(ConfigError, match=r"stalls\.campaigns\.c-1\.previewing"):
        load_settings(overrides={"stalls": {"campaigns": {"c-1": {"previewing": float("inf")}}}})
