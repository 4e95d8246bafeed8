"""aiokafka's and the ssl module's failures as the project's errors, the setting named.

Everything aiokafka raises is translated into :mod:`consumer.errors` by the clients of
this package, so the rest of the service handles the project's own error tree.
"""

from __future__ import annotations

import ssl
from typing import Final

from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from consumer.errors import (
    BrokerError,
    CredentialsError,
    HostnameMismatchError,
    TlsHandshakeError,
    UntrustedCertificateError,
)
from consumer.kafka.oauth import TokenError
from consumer.settings.schema import KafkaSettings

_SASL_REFUSED: Final = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
)
# OpenSSL verify codes: the certificate names another host name / IP address
_NAME_MISMATCH: Final = frozenset({62, 64})
# OpenSSL verify codes: no CA we trust signed the certificate (issuer unknown, self-signed)
_ISSUER_UNKNOWN: Final = frozenset({2, 18, 19, 20, 21})


def reason(exc: BaseException) -> str:
    """Why one connection failed, in a few words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message).rstrip(".")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, ssl.SSLEOFError)):
        return "connection closed by the other side"
    if isinstance(exc, TimeoutError):
        return "no answer"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def translate(
    exc: BaseException, doing: str, settings: KafkaSettings, address: str | None = None
) -> BrokerError:
    """The project's error for an aiokafka failure while ``doing`` something.

    A certificate we refuse or a login the broker refuses is an :class:`AuthenticationError`
    naming the cause and the setting to look at; anything else is a :class:`BrokerError`.
    """
    broker = "the broker" if address is None else f"the broker at {address}"
    if isinstance(exc, TokenError):  # no token to log in with, or the broker refused it
        return exc.translated(doing)
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _NAME_MISMATCH:
            return HostnameMismatchError(
                f"{doing}: host name mismatch: the certificate of {broker} is signed by a "
                f"trusted CA but names another host ({reason(exc)}); list the broker "
                "in kafka.bootstrap_servers by a name its certificate carries (and advertise "
                "that name), or set kafka.ssl_check_hostname = false"
            )
        trusted = (
            f"kafka.ssl_cafile ({settings.ssl_cafile})"
            if settings.ssl_cafile
            else "the system's trust store (kafka.ssl_cafile is not set)"
        )
        if exc.verify_code in _ISSUER_UNKNOWN:
            return UntrustedCertificateError(
                f"{doing}: certificate not trusted: no CA in {trusted} signed the certificate "
                f"of {broker} ({reason(exc)}); set kafka.ssl_cafile to the CA that "
                "signed the broker's certificate"
            )
        return UntrustedCertificateError(
            f"{doing}: certificate not valid: the certificate of {broker} failed "
            f"verification against {trusted} ({reason(exc)})"
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        return TlsHandshakeError(
            f"{doing}: the TLS handshake with {broker} failed ({reason(exc)}); check "
            f"that it is a TLS listener (kafka.security_protocol is {settings.security_protocol}) "
            "and, if it asks for a client certificate, kafka.ssl_certfile and kafka.ssl_keyfile"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return CredentialsError(
            f"{doing}: {broker} does not offer the SASL mechanism {settings.sasl_mechanism}; "
            "check kafka.sasl_mechanism",
            setting="kafka.sasl_mechanism",
        )
    if isinstance(exc, _SASL_REFUSED):
        return CredentialsError(
            f"{doing}: wrong SASL credentials: {broker} refused the login of user "
            f"{settings.sasl_username!r} with {settings.sasl_mechanism} ({exc}); check "
            "kafka.sasl_username and kafka.sasl_password"
        )
    return BrokerError(f"{doing}: {type(exc).__name__}: {exc}")
