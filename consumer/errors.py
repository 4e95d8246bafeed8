"""The project's own errors. Adapters translate their libraries' errors into these.

::

    ServiceError                 anything the service reports as its own failure
    ├── ConfigError              (consumer.config) a setting is unknown or malformed: stop at start
    ├── BrokerError              Kafka could not be reached or refused us
    │   └── AuthenticationError  credentials or TLS rejected: stop at start, never retry
    └── OutputError              an output (alert or dead-letter topic) did not acknowledge
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
