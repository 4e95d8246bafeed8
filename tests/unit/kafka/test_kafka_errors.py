"""aiokafka's and the ssl module's failures as the operator reads them: cause and setting."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from consumer.errors import (
    AuthenticationError,
    BrokerError,
    CredentialsError,
    HostnameMismatchError,
    TlsHandshakeError,
    UntrustedCertificateError,
)
from consumer.kafka.connection import diagnose
from consumer.kafka.consumer import GroupConsumer
from consumer.kafka.errors import translate
from consumer.kafka.options import client_options
from consumer.kafka.producer import TopicProducer
from consumer.settings.schema import ConfigError, KafkaSettings
from consumer.settings.secret import Secret

PASSWORD = "hunter2-secret"  # noqa: S105 - a made-up password, to prove it never shows


def tls(**changes: Any) -> KafkaSettings:
    """SASL_SSL settings with a CA file, changed as asked."""
    base = KafkaSettings(
        bootstrap_servers="broker-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="monitor",
        sasl_password=Secret(PASSWORD),
        ssl_cafile="/etc/kafka/ca.pem",
    )
    return msgspec.structs.replace(base, **changes)


def verify_failure(code: int, message: str) -> ssl.SSLCertVerificationError:
    """A certificate verification failure as the ssl module raises it (OpenSSL verify code)."""
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def test_unknown_issuer_is_a_certificate_not_trusted_by_the_cafile() -> None:
    """A certificate no trusted CA signed names kafka.ssl_cafile and its path."""
    error = translate(
        verify_failure(20, "unable to get local issuer certificate"),
        "creating topics",
        tls(),
        "broker-1:9093",
    )
    assert isinstance(error, UntrustedCertificateError)
    assert (error.cause, error.setting) == ("certificate_untrusted", "kafka.ssl_cafile")
    assert "certificate not trusted" in str(error)
    assert "kafka.ssl_cafile (/etc/kafka/ca.pem)" in str(error)
    assert "broker-1:9093" in str(error)


def test_unknown_issuer_without_a_cafile_says_to_set_one() -> None:
    """Without kafka.ssl_cafile the message says the system's CAs were used and to set it."""
    error = translate(
        verify_failure(19, "self-signed certificate in chain"), "x", tls(ssl_cafile=None)
    )
    assert isinstance(error, UntrustedCertificateError)
    assert "kafka.ssl_cafile is not set" in str(error)


def test_expired_certificate_is_not_called_an_unknown_issuer() -> None:
    """Another verification failure says what OpenSSL found, not that the CA is wrong."""
    error = translate(verify_failure(10, "certificate has expired"), "x", tls())
    assert isinstance(error, UntrustedCertificateError)
    assert "certificate has expired" in str(error)
    assert "no CA" not in str(error)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (62, "Hostname mismatch, certificate is not valid for 'broker-1'."),
        (64, "IP address mismatch, certificate is not valid for '10.0.0.7'."),
    ],
)
def test_name_mismatch_names_bootstrap_servers_and_check_hostname(code: int, message: str) -> None:
    """A certificate for another host or address is a host name mismatch, with both remedies."""
    error = translate(verify_failure(code, message), "x", tls())
    assert isinstance(error, HostnameMismatchError)
    assert (error.cause, error.setting) == ("hostname_mismatch", "kafka.bootstrap_servers")
    assert "host name mismatch" in str(error)
    assert "kafka.ssl_check_hostname" in str(error)


def test_other_tls_failure_is_a_handshake_error() -> None:
    """A TLS failure that is not about the certificate points at the protocol settings."""
    error = translate(
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "x", tls()
    )
    assert isinstance(error, TlsHandshakeError)
    assert "kafka.security_protocol is SASL_SSL" in str(error)


def test_refused_login_is_wrong_credentials_without_the_password() -> None:
    """A refused SASL login names user, mechanism and settings, never the password."""
    refused = SaslAuthenticationFailed("Authentication failed due to invalid credentials")
    error = translate(refused, "x", tls(), "broker-1:9093")
    assert isinstance(error, CredentialsError)
    assert (error.cause, error.setting) == ("credentials_rejected", "kafka.sasl_password")
    assert "wrong SASL credentials" in str(error)
    assert "'monitor'" in str(error)
    assert "SCRAM-SHA-512" in str(error)
    assert PASSWORD not in str(error)
    assert PASSWORD not in repr(error)


def test_mechanism_not_offered_names_sasl_mechanism() -> None:
    """A mechanism the broker does not offer points at kafka.sasl_mechanism."""
    error = translate(UnsupportedSaslMechanismError(), "x", tls())
    assert isinstance(error, CredentialsError)
    assert error.setting == "kafka.sasl_mechanism"


def test_other_client_errors_stay_retryable() -> None:
    """A failure that is not about trust or login is a plain BrokerError: the daemon retries."""
    error = translate(KafkaConnectionError("Connection at x closed"), "fetching", tls())
    assert type(error) is BrokerError


def closed_port() -> int:
    """A loopback port nothing listens on (just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_no_broker_reachable_names_every_server_and_is_retryable() -> None:
    """When no bootstrap server answers, the error names each one's reason and is retried."""
    first, second = closed_port(), closed_port()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{first}, 127.0.0.1:{second}")
    error = asyncio.run(diagnose(settings, KafkaConnectionError("Unable to bootstrap"), "starting"))
    assert not isinstance(error, AuthenticationError)
    assert "no broker reachable at kafka.bootstrap_servers" in str(error)
    assert f"127.0.0.1:{first}: connection refused" in str(error)
    assert f"127.0.0.1:{second}: connection refused" in str(error)


def test_a_listener_that_hangs_up_is_hinted_as_another_protocol() -> None:
    """A server that closes the connection at once hints at kafka.security_protocol."""

    async def run() -> BrokerError:
        async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
            return await diagnose(settings, KafkaConnectionError("Unable to bootstrap"), "x")
        finally:
            server.close()
            await server.wait_closed()

    error = asyncio.run(run())
    assert not isinstance(error, AuthenticationError)
    assert "another protocol than kafka.security_protocol (PLAINTEXT)" in str(error)


def test_missing_ca_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    """A CA file that cannot be read stops the start, naming kafka.ssl_cafile."""
    settings = tls(ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"kafka\.ssl_cafile: .*missing\.pem"):
        client_options(settings)
    with pytest.raises(ConfigError, match=r"kafka\.ssl_cafile"):
        GroupConsumer(settings)


def test_unreadable_client_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    """A client certificate that does not load names kafka.ssl_certfile."""
    not_pem = tmp_path / "client.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"kafka\.ssl_certfile"):
        TopicProducer(tls(ssl_cafile=None, ssl_certfile=str(not_pem)))


def test_encrypted_client_key_is_refused_instead_of_prompting(tmp_path: Path) -> None:
    """An encrypted key is a configuration error, never a password prompt on the terminal."""
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-subj", "/CN=client", "-days", "1",
         "-passout", "pass:secret", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"kafka\.ssl_keyfile: the key is encrypted"):
        client_options(tls(ssl_cafile=None, ssl_certfile=str(cert), ssl_keyfile=str(key)))


def test_clients_that_never_started_need_no_closing() -> None:
    """Both clients build their aiokafka client at start: stopping unstarted ones is a no-op."""

    async def run() -> None:
        consumer, producer = GroupConsumer(KafkaSettings()), TopicProducer(KafkaSettings())
        await consumer.stop()
        await producer.stop()
        with pytest.raises(RuntimeError, match=r"GroupConsumer used before start\(\)"):
            consumer.highwater(("t", 0))

    asyncio.run(run())
