"""The project's own errors. Adapters translate their libraries' errors into these.

::

    ServiceError                   anything the service reports as its own failure
    ├── ConfigError                (consumer.settings.schema) a bad setting: stop at start
    ├── BrokerError                Kafka could not be reached or refused an operation: retried
    │   └── AuthenticationError    no trusted, authenticated connection: stop, never retry
    │       ├── UntrustedCertificateError  no CA we trust signed the broker's certificate
    │       ├── HostnameMismatchError      the broker's certificate names another host
    │       ├── TlsHandshakeError          TLS failed otherwise (protocol, client certificate)
    │       ├── CredentialsError           the broker refused the SASL login (or OAuth token)
    │       └── TokenRefusedError          no OAuth token: the token endpoint refused us
    ├── OutputError                an output (alert or dead-letter topic) did not acknowledge
    ├── TaskFailedError            (consumer.daemon.supervise) a restore or commit raised: exit 4
    └── PlatformError              (consumer.genesys.client) the Genesys Cloud Platform API failed
        ├── PlatformUnavailableError  5xx, a network error or a time-out: back off, try again
        │   └── RateLimitedError      429: wait ``retry_after`` seconds (or back off), try again
        ├── NotFoundError             404: the resource (a deleted campaign) is gone
        ├── BadResponseError          an answer that is not the documented JSON
        └── LoginRefusedError         the token endpoint keeps refusing the client: stop (exit 3)

Each :class:`AuthenticationError` carries ``cause`` (a stable code for logs and tests) and
``setting`` (the setting an operator should look at first); its message says the rest.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base of the project's errors."""


class BrokerError(ServiceError):
    """Kafka could not be reached, or refused an operation."""


class AuthenticationError(BrokerError):
    """We cannot trust the broker, or it will not let us in; retrying will not help."""

    cause: ClassVar[str] = "authentication_failed"
    setting: str = "kafka.security_protocol"  # each kind's usual suspect; an instance may differ

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        if setting is not None:
            self.setting = setting


class UntrustedCertificateError(AuthenticationError):
    """The broker's certificate is not signed by a CA in ``kafka.ssl_cafile``."""

    cause = "certificate_untrusted"
    setting = "kafka.ssl_cafile"


class HostnameMismatchError(AuthenticationError):
    """The broker's certificate is valid but names another host than the one we dialled."""

    cause = "hostname_mismatch"
    setting = "kafka.bootstrap_servers"


class TlsHandshakeError(AuthenticationError):
    """The TLS handshake failed for another reason than the broker's certificate."""

    cause = "tls_handshake_failed"
    setting = "kafka.security_protocol"


class CredentialsError(AuthenticationError):
    """The broker refused the SASL login (user, password or mechanism)."""

    cause = "credentials_rejected"
    setting = "kafka.sasl_password"


class TokenRefusedError(AuthenticationError):
    """The OAuth token endpoint refused the client credentials (or no token can be signed)."""

    cause = "token_refused"
    setting = "kafka.oauth.client_secret"


class OutputError(ServiceError):
    """An output did not acknowledge a record; its input offsets must not be committed."""


class PlatformError(ServiceError):
    """A Genesys Cloud Platform API request failed."""


class PlatformUnavailableError(PlatformError):
    """A transient failure (5xx, network, time-out): worth trying again after a pause."""


class RateLimitedError(PlatformUnavailableError):
    """The platform's rate limit answered 429; ``retry_after`` is its ``Retry-After``."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFoundError(PlatformError):
    """The resource asked for does not exist (a campaign deleted)."""


class BadResponseError(PlatformError):
    """An answer that is not what the API documents (not JSON, wrong shape)."""


class LoginRefusedError(PlatformError):
    """The token endpoint refused the client credentials, again and again."""
