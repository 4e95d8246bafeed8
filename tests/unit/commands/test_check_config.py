"""``interaction-consumer --version`` and ``check-config``: the start's checks, no start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumer.commands.cli import main, version
from tests.unit.commands.test_service_links import SERVICE_LINKS


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run check-config; its exit status, the settings it printed (if any), its stderr."""
    status = main(["check-config", *argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out else None), err


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the installed package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"interaction-consumer {version()}"
    assert version()[0].isdigit()


def test_effective_settings_printed_with_secrets_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """File and environment merged as run reads them; passwords (also in URLs) never shown."""
    path = tmp_path / "settings.toml"
    path.write_text(
        '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\n'
        'sasl_username = "u"\n[alertmanager]\nurls = ["http://am:am-pass@am-0:9093"]\n'
    )
    monkeypatch.setenv("INTERACTION_CONSUMER_KAFKA_SASL_PASSWORD", "kafka-pass")
    monkeypatch.setenv("INTERACTION_CONSUMER_KAFKA_TOPIC", "from-env")
    status, settings, _ = check(capsys, "--config", str(path))
    assert status == 0
    assert settings is not None
    assert settings["kafka"]["topic"] == "from-env"
    assert settings["kafka"]["sasl_password"] == "***"  # noqa: S105 - the redaction
    assert settings["alertmanager"]["urls"] == ["http://am:***@am-0:9093"]
    assert "kafka-pass" not in json.dumps(settings)
    assert "am-pass" not in json.dumps(settings)


def test_poll_needs_what_poll_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--for poll refuses (exit 2, setting named) what poll refuses; run does not need it."""
    monkeypatch.setenv("INTERACTION_CONSUMER_GENESYS_REGION", "mypurecloud.ie")
    status, settings, err = check(capsys, "--for", "poll")
    assert (status, settings) == (2, None)
    assert "genesys.client_id" in err
    assert check(capsys, "--for", "run")[0] == 0
    monkeypatch.setenv("GENESYS_CLIENT_ID", "id")
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "genesys-secret")
    status, settings, _ = check(capsys, "--for", "poll")
    assert status == 0
    assert "genesys-secret" not in json.dumps(settings)


def test_run_refuses_an_unknown_stall_rule_and_unknown_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What stops run at start stops check-config with exit 2: a stall rule, a setting."""
    monkeypatch.setenv("INTERACTION_CONSUMER_STALLS_THRESHOLDS", "{ dialing = 5 }")
    status, _, err = check(capsys)
    assert status == 2
    assert "unknown stall rule 'dialing'" in err
    monkeypatch.delenv("INTERACTION_CONSUMER_STALLS_THRESHOLDS")
    monkeypatch.setenv("INTERACTION_CONSUMER_KAFKA_TOPICS", "t")
    status, _, err = check(capsys)
    assert status == 2
    assert "INTERACTION_CONSUMER_KAFKA_TOPICS: unknown setting" in err


def test_service_links_in_the_environment_pass(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod's service-link variables do not stop the check (nor the start)."""
    for var, value in SERVICE_LINKS.items():
        monkeypatch.setenv(var, value)
    assert check(capsys)[0] == 0
