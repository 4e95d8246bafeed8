"""A real Kafka broker for the integration tests, chosen in this order.

1. ``KAFKA_BOOTSTRAP_SERVERS``, when set: a broker someone already runs.
2. A testcontainers ``KafkaContainer`` (KRaft, pinned image), when a Docker engine answers.
3. ``scripts/kafka-local``: Apache Kafka from Maven Central's jars, no Docker.

When none starts: under CI (``CI=true``) the session fails loudly; on a person's
machine the integration tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, STARTED, Broker, create_topic

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration is marked ``integration``."""
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"no Kafka broker for the integration tests under CI: {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's Kafka broker (see the module docstring for how it is chosen)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield Broker(configured)
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield Broker(container.get_bootstrap_server())
        return
    state = tmp_path_factory.mktemp("kafka-local")
    env = {**os.environ, "KAFKA_LOCAL_STATE": str(state)}
    script = ROOT / "scripts" / "kafka-local"
    started = subprocess.run(
        [str(script), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        _unavailable(f"scripts/kafka-local start failed:\n{started.stderr[-3000:]}")
    try:
        yield Broker(started.stdout.strip().splitlines()[-1], state=Path(state))
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def topic(broker: Broker) -> str:
    """A fresh three-partition input topic of this test's own."""
    name = f"interactions-{uuid.uuid4().hex[:10]}"
    create_topic(broker, name, partitions=3)
    return name


@pytest.fixture(autouse=True)
def _reap_daemons() -> Iterator[None]:
    """Daemons a test left running (it failed before stopping them) do not outlive it."""
    yield
    while STARTED:
        STARTED.pop().reap()
