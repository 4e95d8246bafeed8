"""The [genesys] settings and the poll command line: where to log in, what is required."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.commands.cli import main
from consumer.settings.load import load_settings
from consumer.settings.schema import ConfigError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("genesys", "api", "login"),
    [
        (
            {"region": "mypurecloud.ie"},
            "https://api.mypurecloud.ie",
            "https://login.mypurecloud.ie",
        ),
        (
            {"api_base": "https://api.euw2.pure.cloud/"},
            "https://api.euw2.pure.cloud",
            "https://login.euw2.pure.cloud",
        ),
        ({"api_base": "http://127.0.0.1:8081"}, "http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        (
            {"region": "mypurecloud.de", "login_base": "https://sso.example.com"},
            "https://api.mypurecloud.de",
            "https://sso.example.com",
        ),
        ({}, None, None),
    ],
)
def test_region_api_base_and_login_base(genesys: dict[str, str], api: str, login: str) -> None:
    """Region means api.<region>; login is api. -> login. unless set; a plain host is both."""
    settings = load_settings(overrides={"genesys": genesys}).genesys
    assert (settings.api_url, settings.login_url) == (api, login)


@pytest.mark.parametrize(
    ("genesys", "named"),
    [
        ({"region": "mypurecloud.ie", "api_base": "https://api.x.com"}, "genesys.api_base"),
        ({"region": "https://api.mypurecloud.ie"}, "genesys.region"),
        ({"api_base": "api.mypurecloud.ie"}, "genesys.api_base"),
        ({"login_base": "ftp://login.x"}, "genesys.login_base"),
        ({"interval_seconds": 0}, "genesys.interval_seconds"),
        ({"requests_per_minute": 0}, "genesys.requests_per_minute"),
        ({"client_secrett": "x"}, "genesys.client_secrett"),
    ],
)
def test_bad_settings_are_named(genesys: dict[str, object], named: str) -> None:
    """Each malformed [genesys] setting stops the start with an error naming it."""
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(overrides={"genesys": genesys})


def test_credentials_from_genesys_variables_with_the_secret_hidden() -> None:
    """GENESYS_CLIENT_ID/SECRET fill the credentials; the secret prints as ***."""
    env = {"GENESYS_CLIENT_ID": "id-1", "GENESYS_CLIENT_SECRET": "hush"}
    settings = load_settings(env=env).genesys
    assert settings.client_id == "id-1"
    assert settings.client_secret is not None
    assert settings.client_secret.reveal() == "hush"
    assert "hush" not in repr(settings) + str(settings.client_secret)


def test_example_file_lists_the_genesys_defaults() -> None:
    """deploy/config.example.toml's [genesys] and grace equal the defaults."""
    example = load_settings(ROOT / "deploy" / "config.example.toml")
    defaults = load_settings()
    assert example.genesys == defaults.genesys
    assert example.stalls.preview_timeout_grace_seconds == 30


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["poll"], {"GENESYS_CLIENT_ID": "i", "GENESYS_CLIENT_SECRET": "s"}, "genesys.region"),
        (
            ["poll", "--region", "mypurecloud.ie"],
            {"GENESYS_CLIENT_SECRET": "s"},
            "genesys.client_id",
        ),
        (
            ["poll", "--region", "mypurecloud.ie"],
            {"GENESYS_CLIENT_ID": "i"},
            "genesys.client_secret",
        ),
        (["poll", "--api-base", "nope", "--interval", "5"], {}, "genesys.api_base"),
        (["poll", "--region", "x.y", "--interval", "-1"], {}, "genesys.interval_seconds"),
    ],
)
def test_poll_with_a_missing_or_bad_setting_exits_2_naming_it(
    argv: list[str],
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The poll command stops before connecting: exit status 2, the setting named on stderr."""
    for var in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert main(argv) == 2
    assert named in capsys.readouterr().err


def test_region_and_api_base_exclude_each_other_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--region and --api-base together are a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(["poll", "--region", "mypurecloud.ie", "--api-base", "https://api.x"])
    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
