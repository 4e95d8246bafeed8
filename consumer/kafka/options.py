"""The options every aiokafka client is built with: servers, security, the TLS context."""

from __future__ import annotations

import ssl
from typing import Any

from consumer.kafka.errors import reason
from consumer.kafka.oauth import token_provider
from consumer.settings.schema import ConfigError, KafkaSettings


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by consumer, producer and admin client.

    A CA, certificate or key file that cannot be loaded is a :class:`ConfigError` naming
    its setting, raised when the first client is built.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        if settings.sasl_mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = token_provider(settings.oauth)
            return options
        assert settings.sasl_password is not None  # checked when settings load
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.reveal()
    return options


def _encrypted_key() -> str:
    # OpenSSL would otherwise prompt on a terminal for the key's password
    raise ConfigError("kafka.ssl_keyfile: the key is encrypted; give an unencrypted key")


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context verifying the broker against ``kafka.ssl_cafile`` (or the system's CAs)."""
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"kafka.ssl_cafile: cannot load CA certificates from {settings.ssl_cafile} "
            f"({reason(exc)})"
        ) from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, _encrypted_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"kafka.ssl_certfile, kafka.ssl_keyfile: cannot load the client certificate "
                f"{settings.ssl_certfile} with its key ({reason(exc)})"
            ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context
