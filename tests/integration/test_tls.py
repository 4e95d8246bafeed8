"""Security to the broker: TLS, SASL/SCRAM and PLAIN, and what each refusal tells the operator.

One broker of this module's own (``scripts/kafka-local`` with ``KAFKA_LOCAL_TLS=1`` and a
SCRAM-SHA-256 user) offers PLAINTEXT (the test helpers produce and read through it), SSL
with a certificate for 127.0.0.1 and localhost, SASL_SSL (SCRAM or PLAIN) and SASL_PLAINTEXT
with the user, and an SSL listener whose certificate, from the same CA, names another host.
The daemon's settings here are the ones docs/operate/security.md shows.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    Broker,
    Daemon,
    Sent,
    alerts,
    create_topic,
    local_broker,
    produce,
    read_topic,
    wait_for,
)
from tests.integration.test_daemon import FAST, committed_everything, snapshot

USER, PASSWORD = "monitor", "s3cret-Passw0rd"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker for this module alone, with TLS listeners and a SCRAM user."""
    state = tmp_path_factory.mktemp("tls-broker")
    with local_broker(state, KAFKA_LOCAL_TLS="1", KAFKA_LOCAL_SCRAM=f"{USER}:{PASSWORD}") as (
        broker,
        _,
    ):
        yield broker


def new_topic(broker: Broker) -> str:
    """A fresh three-partition input topic."""
    name = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, name, partitions=3)
    return name


def ssl_settings(broker: Broker, cafile: str | None, listener: str = "ssl") -> dict[str, str]:
    """Daemon settings for an SSL listener, trusting ``cafile`` (unset: the system's CAs)."""
    settings = {
        **FAST,
        "KAFKA_BOOTSTRAP_SERVERS": broker.listener(listener),
        "KAFKA_SECURITY_PROTOCOL": "SSL",
    }
    if cafile is not None:
        settings["KAFKA_SSL_CAFILE"] = cafile
    return settings


def sasl_settings(broker: Broker, protocol: str, password: str) -> dict[str, str]:
    """Daemon settings for the SCRAM user over SASL_SSL or SASL_PLAINTEXT."""
    settings = {
        **FAST,
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
    }
    if protocol == "SASL_SSL":
        settings["KAFKA_BOOTSTRAP_SERVERS"] = broker.listener("sasl-ssl")
        settings["KAFKA_SSL_CAFILE"] = broker.listener("ssl-cafile")
    else:
        settings["KAFKA_BOOTSTRAP_SERVERS"] = broker.listener("sasl")
    return settings


def refused_start(daemon: Daemon, log: Path) -> dict[str, Any]:
    """Run a daemon whose start must be refused; its one ERROR line, once the exit is checked.

    Exit 3, every line a JSON log line (no traceback, nothing raw on stderr), no aiokafka
    client left unclosed, and exactly one ERROR: the daemon's own diagnosis.
    """
    started = time.monotonic()
    status = daemon.run(log)
    text = daemon.logs()
    print(f"\nrefused start: exit {status} after {time.monotonic() - started:.1f}s")
    assert status == 3, text
    assert all(line.startswith("{") for line in text.splitlines()), text
    assert "unclosed" not in text.lower(), text
    errors = [e for e in daemon.log_events() if e["level"] == "ERROR"]
    assert [e["event"] for e in errors] == ["authentication_failed"], text
    return errors[0]


@pytest.mark.kafka4
def test_ssl_end_to_end(secure_broker: Broker, tmp_path: Path) -> None:
    """Over SSL with the right CA: consumed, alerted, dead-lettered, state saved, committed."""
    broker = secure_broker
    topic = new_topic(broker)
    now = time.time()
    produce(
        broker,
        topic,
        [snapshot("over-tls", created=now - 2, previewing=now - 1), Sent(b"bad-1", b"not json")],
    )
    settings = ssl_settings(broker, broker.listener("ssl-cafile"))
    daemon = Daemon(broker, topic, settings).start(tmp_path / "daemon.log")
    fired = wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == "over-tls" for a in alerts(got)),
        timeout=60,
    )
    dead = wait_for(
        lambda: read_topic(broker, daemon.dead_letter_topic, idle=1.0),
        lambda got: any(g.key == b"bad-1" for g in got),
        timeout=30,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    state = read_topic(broker, f"{daemon.group}.state", idle=1.0)
    assert daemon.stop() == 0
    consuming = [e for e in daemon.log_events() if e["event"] == "consuming"]
    print(
        f"\nssl: alerts {len(fired)}, dead letters {len(dead)}, state records {len(state)}, "
        f"bootstrap {consuming[0]['bootstrap']}"
    )
    assert consuming[0]["bootstrap"] == broker.listener("ssl")
    assert [a["status"] for a in alerts(fired)] == ["firing"]
    assert [g.headers["dlq.reason"] for g in dead] == [b"not_json"]
    assert b"over-tls" in {g.key for g in state}
    assert not [e for e in daemon.log_events() if e["level"] == "ERROR"], daemon.logs()


def other_ca(directory: Path) -> str:
    """A CA certificate that signed nothing the broker has."""
    cert = directory / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=some other CA", "-keyout", str(directory / "other-ca.key"),
         "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert)


@pytest.mark.parametrize("ca", ["another CA", "the system's CAs"])
def test_untrusted_certificate_stops_the_start(
    secure_broker: Broker, tmp_path: Path, ca: str
) -> None:
    """A broker certificate no CA in kafka.ssl_cafile signed: exit 3, says so and names it."""
    cafile = other_ca(tmp_path) if ca == "another CA" else None
    daemon = Daemon(secure_broker, new_topic(secure_broker), ssl_settings(secure_broker, cafile))
    error = refused_start(daemon, tmp_path / "daemon.log")
    assert (error["cause"], error["setting"]) == ("certificate_untrusted", "kafka.ssl_cafile")
    assert "certificate not trusted" in error["error"]
    assert secure_broker.listener("ssl") in error["error"]
    if cafile is None:
        assert "kafka.ssl_cafile is not set" in error["error"]
    else:
        assert f"kafka.ssl_cafile ({cafile})" in error["error"]


def test_certificate_for_another_host_stops_the_start_unless_unchecked(
    secure_broker: Broker, tmp_path: Path
) -> None:
    """A trusted certificate naming another host: exit 3 naming the mismatch; fine unchecked."""
    broker = secure_broker
    topic = new_topic(broker)
    settings = ssl_settings(broker, broker.listener("ssl-cafile"), listener="misnamed")
    error = refused_start(Daemon(broker, topic, settings), tmp_path / "checked.log")
    assert (error["cause"], error["setting"]) == ("hostname_mismatch", "kafka.bootstrap_servers")
    assert "host name mismatch" in error["error"]
    assert "kafka.ssl_check_hostname" in error["error"]

    # the same certificate and CA with host names unchecked: only the name was wrong
    unchecked = Daemon(broker, topic, {**settings, "KAFKA_SSL_CHECK_HOSTNAME": "false"})
    unchecked.start(tmp_path / "unchecked.log")
    unchecked.wait_http("/readyz", lambda status: status == 200, timeout=60)
    assert unchecked.stop() == 0


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_scram_with_right_and_wrong_password(
    secure_broker: Broker, tmp_path: Path, protocol: str
) -> None:
    """Right SCRAM credentials alert; a wrong password exits 3 naming it; no log shows either."""
    broker = secure_broker
    topic = new_topic(broker)
    now = time.time()
    produce(broker, topic, [snapshot("over-sasl", created=now - 2, previewing=now - 1)])

    good = Daemon(broker, topic, sasl_settings(broker, protocol, PASSWORD))
    good.start(tmp_path / "good.log")
    wait_for(
        lambda: read_topic(broker, good.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == "over-sasl" for a in alerts(got)),
        timeout=60,
    )
    assert good.stop() == 0

    wrong = "not-" + PASSWORD
    bad = Daemon(broker, topic, sasl_settings(broker, protocol, wrong))
    error = refused_start(bad, tmp_path / "bad.log")
    assert (error["cause"], error["setting"]) == ("credentials_rejected", "kafka.sasl_password")
    assert "wrong SASL credentials" in error["error"]
    assert f"user '{USER}'" in error["error"]
    for text in (good.logs(), bad.logs()):
        assert PASSWORD not in text
        assert wrong not in text


def test_sasl_plain_over_ssl_with_right_and_wrong_password(
    secure_broker: Broker, tmp_path: Path
) -> None:
    """SASL PLAIN over SSL (Confluent Cloud's API keys): alerts; a wrong password exits 3."""
    broker = secure_broker
    topic = new_topic(broker)
    now = time.time()
    produce(broker, topic, [snapshot("over-plain", created=now - 2, previewing=now - 1)])
    plain = {**sasl_settings(broker, "SASL_SSL", PASSWORD), "KAFKA_SASL_MECHANISM": "PLAIN"}

    good = Daemon(broker, topic, plain).start(tmp_path / "good.log")
    wait_for(
        lambda: read_topic(broker, good.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == "over-plain" for a in alerts(got)),
        timeout=60,
    )
    assert good.stop() == 0
    assert not [e for e in good.log_events() if e["level"] == "ERROR"], good.logs()

    wrong = "not-" + PASSWORD
    bad = Daemon(broker, topic, {**plain, "KAFKA_SASL_PASSWORD": wrong})
    error = refused_start(bad, tmp_path / "bad.log")
    assert (error["cause"], error["setting"]) == ("credentials_rejected", "kafka.sasl_password")
    assert f"user '{USER}' with PLAIN" in error["error"]
    for text in (good.logs(), bad.logs()):
        assert PASSWORD not in text
        assert wrong not in text
