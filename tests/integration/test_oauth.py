"""SASL/OAUTHBEARER against a broker that checks the tokens: OIDC client credentials.

One broker of this module's own (``scripts/kafka-local`` with ``KAFKA_LOCAL_OAUTH_JWKS``)
offers an OAUTHBEARER listener whose ``OAuthBearerValidatorCallbackHandler`` checks each
token's RS256 signature against the JWKS of the OIDC double (tests/oidc.py), its audience
and its expiry, and closes a connection once its token expired. The daemon fetches its
tokens from the double's token endpoint, as it would from Keycloak or Confluent Cloud.
Two of the tests run on Kafka 4 too (the ``kafka4`` mark): 4.1 checks tokens only when
told to (see scripts/kafka-local).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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
from tests.integration.test_tls import refused_start
from tests.oidc import OidcDouble, serving

CLIENT, SECRET = "interaction-consumer", "oidc-Secret-0f-the-client"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcDouble]:
    """The OIDC double, serving before the broker starts (the broker fetches its keys)."""
    with serving(OidcDouble({CLIENT: SECRET})) as double:
        yield double


@pytest.fixture(autouse=True)
def _fresh_tokens(idp: OidcDouble) -> None:
    """Each test starts with hour-long, valid tokens."""
    idp.lifetime, idp.expired = 3600.0, False


@pytest.fixture(scope="module")
def oauth_broker(idp: OidcDouble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker for this module alone, with an OAUTHBEARER listener trusting the double."""
    state = tmp_path_factory.mktemp("oauth-broker")
    with local_broker(state, KAFKA_LOCAL_OAUTH_JWKS=idp.jwks_url) as (broker, _):
        yield broker


def oauth_settings(broker: Broker, idp: OidcDouble, secret: str = SECRET) -> dict[str, str]:
    """Daemon settings for the OAUTHBEARER listener, as docs/operate/security.md shows."""
    return {
        **FAST,
        "KAFKA_BOOTSTRAP_SERVERS": broker.listener("oauth"),
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "KAFKA_OAUTH_TOKEN_URL": idp.token_url,
        "KAFKA_OAUTH_CLIENT_ID": CLIENT,
        "KAFKA_OAUTH_CLIENT_SECRET": secret,
        "KAFKA_OAUTH_SCOPE": "kafka",
    }


def new_topic(broker: Broker) -> str:
    """A fresh three-partition input topic."""
    name = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, name, partitions=3)
    return name


def alerted(broker: Broker, daemon: Daemon, iid: str) -> None:
    """Wait until the daemon alerted on ``iid``."""
    wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == iid for a in alerts(got)),
        timeout=60,
    )


@pytest.mark.kafka4
def test_oauth_end_to_end(oauth_broker: Broker, idp: OidcDouble, tmp_path: Path) -> None:
    """With the right client credentials: consumed, alerted, dead-lettered, committed."""
    broker = oauth_broker
    topic = new_topic(broker)
    now = time.time()
    produce(
        broker,
        topic,
        [snapshot("over-oauth", created=now - 2, previewing=now - 1), Sent(b"bad-1", b"nope")],
    )
    daemon = Daemon(broker, topic, oauth_settings(broker, idp)).start(tmp_path / "daemon.log")
    alerted(broker, daemon, "over-oauth")
    wait_for(
        lambda: read_topic(broker, daemon.dead_letter_topic, idle=1.0),
        lambda got: any(g.key == b"bad-1" for g in got),
        timeout=30,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    assert daemon.stop() == 0
    consuming = [e for e in daemon.log_events() if e["event"] == "consuming"]
    assert consuming[0]["bootstrap"] == broker.listener("oauth")
    assert not [e for e in daemon.log_events() if e["level"] == "ERROR"], daemon.logs()
    assert SECRET not in daemon.logs()


def test_token_renewed_mid_run_keeps_the_session(
    oauth_broker: Broker, idp: OidcDouble, tmp_path: Path
) -> None:
    """Tokens living 8 s: the broker drops connections as they expire; new tokens keep it going.

    The daemon keeps its partitions (one assignment, no rejoin) and alerts on records
    produced after its first token expired.
    """
    broker = oauth_broker
    idp.lifetime = 8.0
    topic = new_topic(broker)
    now = time.time()
    produce(broker, topic, [snapshot("before", created=now - 2, previewing=now - 1)])
    issued = idp.issued
    daemon = Daemon(broker, topic, oauth_settings(broker, idp)).start(tmp_path / "daemon.log")
    alerted(broker, daemon, "before")
    # past two token lifetimes: every connection the daemon opened with its first token
    # has been dropped by the broker, and opened again with a later one
    time.sleep(2.5 * idp.lifetime)
    now = time.time()
    produce(broker, topic, [snapshot("after", created=now - 2, previewing=now - 1)])
    alerted(broker, daemon, "after")
    assert daemon.stop() == 0
    events = daemon.log_events()
    print(f"\ntokens fetched {idp.issued - issued}")
    assert idp.issued - issued >= 3
    assert [e["event"] for e in events].count("partitions_assigned") == 1, daemon.logs()
    assert not [e for e in events if e["level"] == "ERROR"], daemon.logs()


def test_wrong_client_secret_stops_the_start(
    oauth_broker: Broker, idp: OidcDouble, tmp_path: Path
) -> None:
    """A secret the token endpoint refuses: exit 3, one ERROR naming it; the secret unshown."""
    wrong = "not-" + SECRET
    daemon = Daemon(oauth_broker, new_topic(oauth_broker), oauth_settings(oauth_broker, idp, wrong))
    error = refused_start(daemon, tmp_path / "daemon.log")
    assert (error["cause"], error["setting"]) == ("token_refused", "kafka.oauth.client_secret")
    assert "OAuth token refused" in error["error"]
    assert "invalid_client" in error["error"]
    assert SECRET not in daemon.logs()


@pytest.mark.kafka4
def test_expired_token_stops_the_start(
    oauth_broker: Broker, idp: OidcDouble, tmp_path: Path
) -> None:
    """A token the broker refuses as expired: exit 3, one ERROR saying so, naming the issuer."""
    idp.expired = True
    daemon = Daemon(oauth_broker, new_topic(oauth_broker), oauth_settings(oauth_broker, idp))
    error = refused_start(daemon, tmp_path / "daemon.log")
    assert (error["cause"], error["setting"]) == ("credentials_rejected", "kafka.oauth.token_url")
    assert "the broker refused the OAuth token" in error["error"]
    assert "'invalid_token'" in error["error"]
    assert "the token had expired" in error["error"]
