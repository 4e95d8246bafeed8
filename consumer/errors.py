"""The project's own errors. Adapters translate their libraries' errors into these.

::

    ServiceError                 anything the service reports as its own failure
    ├── ConfigError              (consumer.config) a setting is unknown or malformed: stop at start
    ├── BrokerError              Kafka could not be reached or refused us
    │   └── AuthenticationError  credentials or TLS rejected: stop at start, never retry
    ├── OutputError              an output (alert or dead-letter topic) did not acknowledge
    └── PlatformError            (consumer.adapters.genesys) the Genesys Cloud Platform API failed
        ├── PlatformUnavailableError  5xx, a network error or a time-out: back off, try again
        │   └── RateLimitedError      429: wait ``retry_after`` seconds (or back off), try again
        ├── NotFoundError             404: the resource (a deleted campaign) is gone
        ├── BadResponseError          an answer that is not the documented JSON
        └── LoginRefusedError         the token endpoint keeps refusing the client: stop (exit 3)
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the project's errors."""


class BrokerError(ServiceError):
    """Kafka could not be reached, or refused an operation."""


class AuthenticationError(BrokerError):
    """The broker rejected our credentials or TLS setup; retrying will not help."""


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
