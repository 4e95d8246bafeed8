"""OAUTHBEARER tokens for Kafka: OIDC client credentials, or Amazon MSK's IAM tokens.

aiokafka asks its ``sasl_oauth_token_provider`` for a token at every new connection
(it never re-authenticates a live one: a broker with ``connections.max.reauth.ms`` closes
the connection when the token's session ends, and the client connects again with a
fresh token). A provider here keeps its token and fetches a new one once half its life
or all but five minutes of it have passed, so connections never carry an expiring token.

A failure inside aiokafka's connect must be a :class:`~aiokafka.errors.KafkaError` for
aiokafka to treat it like any failed connection: :class:`TokenError` is one, carrying the
project's error (its class and message), which :mod:`consumer.kafka.connection` raises
when it diagnoses the failed start.

aiokafka 0.14 also mishandles a refused token: the broker answers the token with an RFC
7628 error challenge (``{"status":"invalid_token"}``) and waits for ``%x01``, but aiokafka
takes the challenge for success, and the broker then drops the connection at the next
request, with no reason given. :func:`install_refusal_check` makes the challenge an error
naming its cause (kafka-python's and sarama's fixes do the same).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import msgspec
from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import AIOKafkaConnection, OAuthAuthenticator
from aiokafka.errors import KafkaError

from consumer.errors import AuthenticationError, BrokerError, CredentialsError, TokenRefusedError
from consumer.observe.logs import fields
from consumer.settings.schema import ConfigError, OAuthSettings
from consumer.settings.secret import Secret

log = logging.getLogger(__name__)

# a token endpoint's answer larger than this is not a token
_MAX_ANSWER_BYTES: Final = 256 * 1024


class TokenError(KafkaError):  # type: ignore[misc]
    """No token to log in with; ``error`` and ``text`` make the project's error for it."""

    def __init__(self, error: type[BrokerError], text: str, setting: str | None = None) -> None:
        super().__init__(text)
        self.error = error
        self.text = text
        self.setting = setting

    def translated(self, doing: str) -> BrokerError:
        """The project's error, for a failure while ``doing`` something."""
        message = f"{doing}: {self.text}"
        if issubclass(self.error, AuthenticationError):
            return self.error(message, setting=self.setting)
        return self.error(message)


def renew_at(now: float, life: float) -> float:
    """When a token obtained at ``now`` for ``life`` seconds is renewed: half-life, or 5 min."""
    life = max(life, 0.0)
    return now + max(life / 2, life - 300)


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0  # RFC 6749 makes it optional; an hour is the usual default


class OidcTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Tokens from an OAuth 2 token endpoint, by the client credentials grant."""

    def __init__(self, oauth: OAuthSettings, clock: Callable[[], float] = time.time) -> None:
        # each is checked when the settings load
        assert oauth.token_url is not None
        assert oauth.client_id is not None
        assert oauth.client_secret is not None
        self.oauth = oauth
        self._url, self._client = oauth.token_url, oauth.client_id
        # HTTP Basic, as RFC 6749 asks; names and secrets URL-encoded first (section 2.3.1)
        pair = f"{quote(oauth.client_id)}:{quote(oauth.client_secret.reveal())}".encode()
        self._basic = Secret("Basic " + base64.b64encode(pair).decode())
        self._clock = clock
        self._token: Secret | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()  # the connections opened at once share one fetch
        self.fetched = 0

    def extensions(self) -> dict[str, str]:
        """The SASL extensions sent with the token (Confluent Cloud's logicalCluster...)."""
        return dict(self.oauth.extensions)

    async def token(self) -> str:
        """The token in hand, or a new one once it is due for renewal."""
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = await self._fetch()
            return self._token.reveal()

    async def _fetch(self) -> Secret:
        oauth = self.oauth
        form = {"grant_type": "client_credentials"}
        if oauth.scope:
            form["scope"] = oauth.scope
        where = f"the token endpoint kafka.oauth.token_url ({self._url})"
        try:
            # a session per fetch: one fetch per token lifetime, and nothing left to close
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=oauth.timeout_seconds)
                ) as session,
                session.post(
                    self._url,
                    data=form,
                    headers={"Authorization": self._basic.reveal()},
                    allow_redirects=False,
                ) as got,
            ):
                body = await got.content.read(_MAX_ANSWER_BYTES)
                status = got.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or ("no answer" if isinstance(exc, TimeoutError) else "")
            raise TokenError(
                BrokerError,
                f"cannot get an OAuth token from {where}: {type(exc).__name__} {reason}",
            ) from None
        if status in (400, 401, 403):
            raise TokenError(
                TokenRefusedError,
                f"OAuth token refused: {where} refused client id {self._client!r} "
                f"(HTTP {status}{_oauth_error(body)}); check kafka.oauth.client_id and "
                "kafka.oauth.client_secret (and kafka.oauth.scope)",
            )
        if status != 200:
            raise TokenError(BrokerError, f"cannot get an OAuth token from {where}: HTTP {status}")
        try:
            answer = msgspec.json.decode(body, type=_TokenAnswer)
        except msgspec.DecodeError:  # not JSON, or not a token's shape
            raise TokenError(
                BrokerError, f"{where} answered 200 without a token (not OAuth token JSON)"
            ) from None
        now = self._clock()
        self._renew_at = renew_at(now, answer.expires_in)
        self.fetched += 1
        log.info("kafka_token_obtained", extra=fields(expires_in=answer.expires_in))
        return Secret(answer.access_token)

    def refused(self, challenge: bytes, token: str) -> TokenError:
        """The broker's refusal of ``token``, worded for an operator."""
        self._token = None  # the next connection fetches a new one
        return TokenError(
            CredentialsError,
            f"the broker refused the OAuth token from kafka.oauth.token_url "
            f"({self.oauth.token_url}): {_status(challenge)}{_expiry_hint(token, self._clock())}; "
            "the broker must trust that issuer, and the token must carry the audience and "
            "scope it expects (kafka.oauth.scope)",
            setting="kafka.oauth.token_url",
        )


class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Amazon MSK IAM tokens: a SigV4-signed URL from ``aws-msk-iam-sasl-signer-python``.

    The credentials come from the standard AWS chain (environment, profile, web identity
    on EKS, the instance's role); the signing is local, but the chain may call AWS, so it
    runs in a thread.
    """

    def __init__(self, oauth: OAuthSettings, clock: Callable[[], float] = time.time) -> None:
        assert oauth.region  # checked at load
        try:
            signer = importlib.import_module("aws_msk_iam_sasl_signer.MSKAuthTokenProvider")
        except ImportError:
            raise ConfigError(
                "kafka.oauth.provider aws-msk-iam needs the msk extra: "
                "pip install 'interaction-consumer[msk]' (the image has it)"
            ) from None
        self._generate: Callable[[str], tuple[str, int]] = signer.generate_auth_token
        self.region = oauth.region
        self._clock = clock
        self._token: Secret | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The token in hand, or a newly signed one once it is due for renewal."""
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                token, expires_ms = await asyncio.to_thread(self._sign)
                now = self._clock()
                self._token, self._renew_at = token, renew_at(now, expires_ms / 1000 - now)
                log.info("kafka_token_obtained", extra=fields(expires_in=expires_ms / 1000 - now))
                return token.reveal()
            return self._token.reveal()

    def _sign(self) -> tuple[Secret, int]:
        try:
            token, expires_ms = self._generate(self.region)
        except Exception as exc:  # botocore's errors: no credentials, an unusable profile...
            raise TokenError(
                TokenRefusedError,
                f"cannot sign an Amazon MSK IAM token for kafka.oauth.region {self.region}: "
                f"{type(exc).__name__}: {exc}; the AWS credentials come from the standard "
                "chain (AWS_* variables, AWS_PROFILE, the pod's or instance's role)",
                setting="kafka.oauth.provider",
            ) from None
        return Secret(token), expires_ms

    def refused(self, challenge: bytes, token: str) -> TokenError:
        """The broker's refusal of an IAM token, worded for an operator."""
        self._token = None
        return TokenError(
            CredentialsError,
            f"the broker refused the Amazon MSK IAM token for kafka.oauth.region "
            f"{self.region}: {_status(challenge)}; the role needs kafka-cluster:Connect "
            "(and the topic and group actions) on the cluster, and the region must be the "
            "cluster's",
            setting="kafka.oauth.region",
        )


def token_provider(oauth: OAuthSettings) -> OidcTokenProvider | MskIamTokenProvider:
    """The provider ``kafka.oauth.provider`` names; a :class:`ConfigError` if it cannot be."""
    install_refusal_check()
    if oauth.provider == "aws-msk-iam":
        return MskIamTokenProvider(oauth)
    return OidcTokenProvider(oauth)


class _CheckedOAuthAuthenticator(OAuthAuthenticator):  # type: ignore[misc]
    """aiokafka's OAUTHBEARER exchange, with the broker's error challenge taken as refusal."""

    _token_sent: bool
    _sent = ""  # the token as sent, for the wording of a refusal (never logged)

    async def step(self, payload: bytes | None) -> tuple[bytes, bool] | None:
        provider: OidcTokenProvider | MskIamTokenProvider = self._sasl_oauth_token_provider
        if not self._token_sent:
            self._sent = await provider.token()
            self._token_sent = True
            request = self._build_oauth_client_request(self._sent, self._token_extensions())
            return request.encode(), True
        if payload:  # the broker's error challenge: a success answers nothing
            raise provider.refused(payload, self._sent)
        return None


def _authenticator(connection: Any) -> _CheckedOAuthAuthenticator:
    return _CheckedOAuthAuthenticator(
        sasl_oauth_token_provider=connection._sasl_oauth_token_provider
    )


def install_refusal_check() -> None:
    """Make aiokafka's connections use :class:`_CheckedOAuthAuthenticator` (idempotent)."""
    AIOKafkaConnection.authenticator_oauth = _authenticator


def _status(challenge: bytes) -> str:
    """The RFC 7628 error status of a broker's challenge, in words."""
    try:
        status = json.loads(challenge).get("status")
    except (ValueError, AttributeError):
        status = None
    return f"it answered {status!r}" if isinstance(status, str) else "it refused the login"


def _expiry_hint(token: str, now: float) -> str:
    """``" (the token expired N s before it was sent)"`` when the token is such a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return ""  # an opaque token: nothing to read
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        expiry = float(claims["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return ""
    if expiry > now:
        return ""
    return (
        f" (the token had expired {now - expiry:.0f} s before it was sent: the clocks of this "
        "host and the token issuer differ, or the issuer hands out expired tokens)"
    )


def _oauth_error(body: bytes) -> str:
    """``": invalid_client"`` from an OAuth error answer, or nothing."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return f": {error}" if isinstance(error, str) and error.isprintable() else ""
