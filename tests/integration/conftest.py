"""A real Kafka broker for the integration tests, chosen in this order.

1. ``KAFKA_BOOTSTRAP_SERVERS``, when set: a broker someone already runs.
2. A testcontainers ``KafkaContainer`` (KRaft, pinned image), when a Docker engine answers
   and ``KAFKA_LOCAL_VERSION`` does not ask for a version of its own.
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
from typing import Any

import pytest

from tests.integration.harness import STARTED, Broker, create_topic, local_broker

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


# Modules whose tests share something made once for the module: a broker of their own
# (halted, reconfigured, or with TLS or OAuth listeners) or the image. Under pytest-xdist each runs
# whole in one process; were one split, each process would make its own (slower, still right).
WHOLE_MODULES = ("test_broker_faults.py", "test_image.py", "test_oauth.py", "test_tls.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (the default of ``-n``): each test alone, but ``WHOLE_MODULES`` whole.

    xdist's own ``loadgroup`` would do it with marks, but pytest-xdist 3.8 loses them on
    pytest 9.2 (its group travels in the node id, which it can no longer rewrite), and
    ``loadfile`` keeps every module whole, which leaves one process idle for long at the end.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module.rsplit("/", 1)[-1] in WHOLE_MODULES else nodeid

    return Scheduling(config, log)


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


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's Kafka broker (see the module docstring for how it is chosen)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield Broker(configured)
        return
    # KAFKA_LOCAL_VERSION asks for that Apache Kafka version (the Kafka 4 leg of make test)
    if _docker_answers() and not os.environ.get("KAFKA_LOCAL_VERSION"):
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield Broker(container.get_bootstrap_server())
        return
    port = os.environ.get("KAFKA_LOCAL_PORT")
    with local_broker(
        tmp_path_factory.mktemp("kafka-local"), **({"KAFKA_LOCAL_PORT": port} if port else {})
    ) as (started, _):
        yield started


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
