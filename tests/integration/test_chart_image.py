"""The built image, started with the environment the chart's pod gives it, becomes ready.

The chart is rendered (tests/chart.py) with settings for the test broker; the monitor's
container environment (env, Secret keys, the pod's name, service links) and its mounted
settings file are handed to the image's entry point under ``buildah run``, as the
image test does (tests/integration/test_image.py: its image, container and daemon).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from tests.chart import VALUES, Container, containers, render
from tests.integration.harness import Broker
from tests.integration.test_image import (  # noqa: F401 - the fixtures
    Image,
    ImageDaemon,
    container,
    image,
    in_container,
)

SETTINGS_DIR = "/etc/interaction-consumer"


@dataclass
class PodDaemon(ImageDaemon):
    """The image's entry point with the pod's arguments, environment and settings mount."""

    pod: Container | None = None
    settings_dir: Path | None = None

    def command(self) -> list[str]:
        """``buildah run`` of the pod's command, with exactly the pod's environment."""
        assert self.image is not None
        assert self.pod is not None
        assert self.settings_dir is not None
        return in_container(
            self.container,
            self.image.command(*self.pod.args),
            env=self.pod.env,
            mounts={self.settings_dir: SETTINGS_DIR},
        )


def test_image_with_the_rendered_pod_environment_becomes_ready(
    image: Image,  # noqa: F811
    container: str,  # noqa: F811
    broker: Broker,
    topic: str,
    tmp_path: Path,
) -> None:
    """The monitor's pod, as the chart renders it, answers /readyz on the test broker."""
    daemon = PodDaemon(broker, topic, image=image, container=container)
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[kafka]\nbootstrap_servers = "{broker.bootstrap}"\ntopic = "{topic}"\n'
        f'group_id = "{daemon.group}"\nalerts_topic = "{daemon.alerts_topic}"\n'
        f'dead_letter_topic = "{daemon.dead_letter_topic}"\n'
        "[runtime]\nshutdown_grace_seconds = 10\n"
    )
    objects = render(VALUES | {"port": str(daemon.port)}, files={"config": settings})
    (pod,) = [c for c in containers(objects) if c.args[0] == "run"]
    daemon.pod = pod
    for inside, host in pod.write_files(tmp_path / "pod").items():
        assert inside.startswith(SETTINGS_DIR + "/")
        host.chmod(0o644)  # the image's user (10001) reads it, as from a ConfigMap
    daemon.settings_dir = tmp_path / "pod" / SETTINGS_DIR.lstrip("/")
    daemon.settings_dir.chmod(0o755)
    try:
        daemon.start(tmp_path / "daemon.log")
        daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
        assert daemon.stop(signal.SIGTERM, timeout=10) == 0
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)
