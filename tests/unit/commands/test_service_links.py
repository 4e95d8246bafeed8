"""The settings loader next to Kubernetes' service-link variables."""

from __future__ import annotations

import pytest

from consumer.settings.load import load_settings
from consumer.settings.schema import ConfigError

# what the kubelet injects for Services named interaction-consumer (one port, named
# http) and interaction-consumer-poller, on IPv4 and IPv6 cluster addresses
SERVICE_LINKS = {
    "INTERACTION_CONSUMER_SERVICE_HOST": "10.96.0.10",
    "INTERACTION_CONSUMER_SERVICE_PORT": "8080",
    "INTERACTION_CONSUMER_SERVICE_PORT_HTTP": "8080",
    "INTERACTION_CONSUMER_PORT": "tcp://10.96.0.10:8080",
    "INTERACTION_CONSUMER_PORT_8080_TCP": "tcp://10.96.0.10:8080",
    "INTERACTION_CONSUMER_PORT_8080_TCP_PROTO": "tcp",
    "INTERACTION_CONSUMER_PORT_8080_TCP_PORT": "8080",
    "INTERACTION_CONSUMER_PORT_8080_TCP_ADDR": "10.96.0.10",
    "INTERACTION_CONSUMER_POLLER_SERVICE_HOST": "fd00::1a",
    "INTERACTION_CONSUMER_POLLER_SERVICE_PORT_METRICS_HTTP": "9090",
    "INTERACTION_CONSUMER_POLLER_PORT": "tcp://[fd00::1a]:9090",
    "INTERACTION_CONSUMER_POLLER_PORT_9090_UDP_ADDR": "fd00::1a",
}


def test_service_link_variables_are_not_settings() -> None:
    """Every service-link variable Kubernetes injects is ignored; real settings still apply."""
    env = SERVICE_LINKS | {"INTERACTION_CONSUMER_HTTP_PORT": "9999"}
    settings = load_settings(env=env)
    assert settings.http.port == 9999


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("INTERACTION_CONSUMER_PORT", "8080"),  # a port, but not the link's tcp:// form
        ("INTERACTION_CONSUMER_SERVICE_HOST", "monitor.example"),  # links carry addresses
        ("INTERACTION_CONSUMER_PORT_8080_TCP_PROTO", "http"),
        ("INTERACTION_CONSUMER_SERVICE_PORT", "http"),
        ("INTERACTION_CONSUMER_HTTP_PROT", "8080"),  # a typo of http.port
        ("INTERACTION_CONSUMER_KAFKA_TOPICS", "t"),
    ],
)
def test_unknown_settings_in_link_like_shapes_are_still_refused(var: str, value: str) -> None:
    """A name or value that is not exactly a service link is an unknown setting, named."""
    with pytest.raises(ConfigError, match=f"{var}: unknown setting"):
        load_settings(env={var: value})
