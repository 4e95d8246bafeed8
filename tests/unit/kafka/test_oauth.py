"""OAUTHBEARER: the settings, the OIDC and Amazon MSK IAM token providers, refusals worded."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
import urllib.parse
from collections.abc import Iterator

import jwt
import msgspec
import pytest

from consumer.errors import BrokerError, CredentialsError, TokenRefusedError
from consumer.kafka.errors import translate
from consumer.kafka.oauth import (
    MskIamTokenProvider,
    OidcTokenProvider,
    TokenError,
    _CheckedOAuthAuthenticator,
    token_provider,
)
from consumer.kafka.options import client_options
from consumer.settings.load import load_settings
from consumer.settings.schema import ConfigError, KafkaSettings, OAuthSettings
from consumer.settings.secret import Secret
from tests.oidc import OidcDouble, serving

SECRET = "client-s3cret-value"  # noqa: S105 - made up, to prove it never shows


@pytest.fixture
def idp() -> Iterator[OidcDouble]:
    """The test identity provider, serving on 127.0.0.1."""
    with serving(OidcDouble({"monitor": SECRET})) as double:
        yield double


def oidc(idp: OidcDouble, secret: str = SECRET, **changes: object) -> OAuthSettings:
    """OIDC settings for the double's client."""
    base = OAuthSettings(token_url=idp.token_url, client_id="monitor", client_secret=Secret(secret))
    return msgspec.structs.replace(base, **changes)


OAUTH_ENV = {
    "INTERACTION_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "INTERACTION_CONSUMER_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
}


def test_oauthbearer_names_the_first_missing_setting_of_its_provider() -> None:
    """OAUTHBEARER without a token URL (oidc) or a region (aws-msk-iam) names that setting."""
    with pytest.raises(ConfigError, match=r"needs kafka\.oauth\.token_url"):
        load_settings(env=OAUTH_ENV)
    with pytest.raises(ConfigError, match=r"needs kafka\.oauth\.region"):
        load_settings(env={**OAUTH_ENV, "INTERACTION_CONSUMER_KAFKA_OAUTH_PROVIDER": "aws-msk-iam"})


def test_oauth_settings_from_the_environment_keep_the_secret_hidden() -> None:
    """The client secret and extensions come from the environment; no repr shows the secret."""
    settings = load_settings(
        env={
            **OAUTH_ENV,
            "INTERACTION_CONSUMER_KAFKA_OAUTH_TOKEN_URL": "https://idp.example/oauth2/token",
            "INTERACTION_CONSUMER_KAFKA_OAUTH_CLIENT_ID": "sa-1",
            "INTERACTION_CONSUMER_KAFKA_OAUTH_CLIENT_SECRET": SECRET,
            "INTERACTION_CONSUMER_KAFKA_OAUTH_EXTENSIONS": (
                '{ logicalCluster = "lkc-1", identityPoolId = "pool-2" }'
            ),
        }
    )
    oauth = settings.kafka.oauth
    assert oauth.client_secret is not None
    assert oauth.client_secret.reveal() == SECRET
    assert oauth.extensions == {"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"token_url": "idp.example/token"}, "kafka.oauth.token_url"),
        ({"extensions": {"bad key": "x"}}, "kafka.oauth.extensions"),
        ({"extensions": {"auth": "x"}}, "kafka.oauth.extensions"),
    ],
)
def test_malformed_oauth_settings_are_refused_by_name(
    changes: dict[str, object], named: str
) -> None:
    """A token URL that is not http(s), or an extension name SASL cannot carry, is named."""
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(overrides={"kafka": {"oauth": changes}})


def test_oidc_token_is_fetched_once_reused_and_renewed_at_half_life(idp: OidcDouble) -> None:
    """One fetch serves connections opened together; past half its life a new one is fetched."""
    idp.lifetime = 60.0
    now = [time.time()]
    provider = OidcTokenProvider(oidc(idp, scope="kafka-read"), clock=lambda: now[0])

    async def scenario() -> tuple[list[str], str]:
        first = await asyncio.gather(*(provider.token() for _ in range(5)))
        now[0] += 31  # past half of 60 s
        return first, await provider.token()

    first, renewed = asyncio.run(scenario())
    assert len(set(first)) == 1
    assert idp.issued == 2
    assert renewed != first[0]
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert (claims["sub"], claims["scope"]) == ("monitor", "kafka-read")


def test_wrong_client_secret_is_a_refusal_naming_the_secret_setting(idp: OidcDouble) -> None:
    """A 401 from the token endpoint: token_refused, kafka.oauth.client_secret, secret unshown."""
    provider = OidcTokenProvider(oidc(idp, secret="not-" + SECRET))
    with pytest.raises(TokenError) as raised:
        asyncio.run(provider.token())
    error = translate(raised.value, "starting the consumer", KafkaSettings())
    assert isinstance(error, TokenRefusedError)
    assert (error.cause, error.setting) == ("token_refused", "kafka.oauth.client_secret")
    assert "invalid_client" in str(error)
    assert idp.token_url in str(error)
    assert SECRET not in str(error)


def test_unreachable_token_endpoint_is_a_broker_error_to_retry() -> None:
    """No token endpoint listening: a plain BrokerError (retried), naming the token URL."""
    settings = OAuthSettings(
        token_url="http://127.0.0.1:9/token",  # noqa: S106 - a URL, not a password
        client_id="c",
        client_secret=Secret(SECRET),
    )
    with pytest.raises(TokenError) as raised:
        asyncio.run(OidcTokenProvider(settings).token())
    error = translate(raised.value, "starting the consumer", KafkaSettings())
    assert type(error) is BrokerError
    assert "kafka.oauth.token_url (http://127.0.0.1:9/token)" in str(error)


def test_broker_error_challenge_is_a_refusal_saying_the_token_had_expired(
    idp: OidcDouble,
) -> None:
    """The broker's RFC 7628 error challenge fails the login, naming expiry when it is that."""
    idp.expired = True
    provider = OidcTokenProvider(oidc(idp), clock=time.time)
    authenticator = _CheckedOAuthAuthenticator(sasl_oauth_token_provider=provider)

    async def scenario() -> tuple[bytes, TokenError]:
        step = await authenticator.step(None)
        assert step is not None
        request = step[0]
        with pytest.raises(TokenError) as raised:
            await authenticator.step(b'{"status":"invalid_token"}')
        return request, raised.value

    request, refusal = asyncio.run(scenario())
    assert request.startswith(b"n,,\x01auth=Bearer ey")
    error = translate(refusal, "starting the consumer", KafkaSettings())
    assert isinstance(error, CredentialsError)
    assert error.setting == "kafka.oauth.token_url"
    assert "'invalid_token'" in str(error)
    assert "the token had expired" in str(error)


def test_broker_accepting_the_token_ends_the_exchange(idp: OidcDouble) -> None:
    """An empty answer to the token is success: no further step, extensions were sent."""
    provider = OidcTokenProvider(oidc(idp, extensions={"logicalCluster": "lkc-1"}))
    authenticator = _CheckedOAuthAuthenticator(sasl_oauth_token_provider=provider)

    async def scenario() -> tuple[bytes, object]:
        step = await authenticator.step(None)
        assert step is not None
        return step[0], await authenticator.step(b"")

    request, after = asyncio.run(scenario())
    assert request.endswith(b"\x01logicalCluster=lkc-1\x01\x01")
    assert after is None


def test_client_options_carry_the_token_provider_and_no_password(idp: OidcDouble) -> None:
    """OAUTHBEARER settings give aiokafka the provider, and no SASL user or password."""
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER", oauth=oidc(idp)
    )
    options = client_options(settings)
    assert isinstance(options["sasl_oauth_token_provider"], OidcTokenProvider)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert "sasl_plain_password" not in options


def test_msk_iam_token_is_signed_for_the_region_with_an_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dummy AWS credentials give a SigV4-signed MSK token for the region, expiring later."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    provider = token_provider(OAuthSettings(provider="aws-msk-iam", region="eu-west-1"))
    assert isinstance(provider, MskIamTokenProvider)

    async def scenario() -> list[str]:
        return [await provider.token(), await provider.token()]

    first, again = asyncio.run(scenario())
    assert first == again  # kept until due for renewal
    url = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode()
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].split("/")[2] == "eu-west-1"
    assert query["X-Amz-Credential"][0].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert int(query["X-Amz-Expires"][0]) > 0
    assert "X-Amz-Signature" in query


def test_msk_iam_without_the_extra_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aws-msk-iam without the msk extra installed stops the start naming the extra."""
    monkeypatch.setitem(sys.modules, "aws_msk_iam_sasl_signer.MSKAuthTokenProvider", None)
    with pytest.raises(ConfigError, match=r"interaction-consumer\[msk\]"):
        token_provider(OAuthSettings(provider="aws-msk-iam", region="eu-west-1"))
