"""The project's own errors. Adapters translate their libraries' errors into these.

::

    ServiceError                   anything the service reports as its own failure
    ├── ConfigError                (consumer.config) a bad setting: stop at start
    ├── BrokerError                Kafka could not be reached or refused an operation: retried
    │   └── AuthenticationError    no trusted, authenticated connection: stop, never retry
    │       ├── UntrustedCertificateError  no CA we trust signed the broker's certificate
    │       ├── HostnameMismatchError      the broker's certificate names another host
    │       ├── TlsHandshakeError          TLS failed otherwise (protocol, client certificate)
    │       └── CredentialsError           the broker refused the SASL login
    └── OutputError                an output (alert or dead-letter topic) did not acknowledge

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


class OutputError(ServiceError):
    """An output did not acknowledge a record; its input offsets must not be committed."""
