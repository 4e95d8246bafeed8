"""The container image: built from the checkout, inspected, and run against the broker.

There is no Docker engine here: ``scripts/image`` builds the Dockerfile as committed with
buildah, on a stand-in for its base image made from Debian's packages. The image then
runs with ``buildah run`` (chroot isolation, the host's network) as its configured user.
``buildah run`` kills its command on SIGTERM rather than passing the signal on, so the
tests send SIGTERM to the entry point's own process, as ``docker stop`` sends it to the
container's first process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consumer.engine.model import iso
from tests.integration.harness import ROOT, Broker, Daemon, alerts, produce
from tests.integration.test_daemon import FAST, alerts_until, snapshot

TOOLS = ("buildah", "mmdebstrap")
GRACE = 10  # runtime.shutdown_grace_seconds of the daemon under test
PASSED = ("INTERACTION_CONSUMER_", "KAFKA_BOOTSTRAP_SERVERS")  # the daemon's own variables


@dataclass(frozen=True)
class Image:
    """A built image: its tag and its Docker configuration (user, entry point, ...)."""

    tag: str
    config: dict[str, Any]

    def command(self, *args: str) -> list[str]:
        """What ``docker run IMAGE ARGS...`` runs: the entry point, then args or the CMD."""
        return [*self.config["Entrypoint"], *(args or self.config["Cmd"])]


def in_container(
    container: str,
    command: list[str],
    env: Mapping[str, str] | None = None,
    mounts: Mapping[Path, str] | None = None,
) -> list[str]:
    """The command line running ``command`` in ``container`` as the image's user."""
    options = [f"--env={k}={v}" for k, v in (env or {}).items()]
    options += [f"--volume={host}:{inside}:ro" for host, inside in (mounts or {}).items()]
    return ["buildah", "run", "--isolation=chroot", *options, container, "--", *command]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(0), [])
        found += below
        todo += below
    return found


@dataclass
class ImageDaemon(Daemon):
    """The image's entry point with its default command (``run``), in a buildah container."""

    image: Image | None = None
    container: str = ""

    def command(self) -> list[str]:
        """``buildah run`` of the entry point, with the daemon's settings in its environment."""
        assert self.image is not None
        settings = {k: v for k, v in self.env().items() if k.startswith(PASSED)}
        return in_container(self.container, self.image.command(), env=settings)

    def entry_process(self) -> int:
        """The entry point's process: the last below ``buildah run`` and its chroot helpers."""
        assert self.process is not None
        below = descendants(self.process.pid)
        assert below, f"nothing runs below buildah:\n{self.logs()}"
        return below[-1]

    def send_signal(self, sig: int) -> None:
        """Signal the entry point's process (buildah would kill it); SIGKILL kills all below."""
        assert self.process is not None
        below = descendants(self.process.pid)
        targets = below if sig == signal.SIGKILL else below[-1:]
        if not targets:
            self.process.send_signal(sig)
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, sig)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the image cannot be built under CI: {reason}")
    pytest.skip(f"the image cannot be built: {reason}")


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """The image built from this checkout by ``scripts/image``, removed afterwards."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        _unavailable(f"{' and '.join(missing)} missing (scripts/setup-tools installs them)")
    tag = f"localhost/interaction-consumer:test-{uuid.uuid4().hex[:10]}"
    built = subprocess.run(
        [str(ROOT / "scripts" / "image"), "build", tag], capture_output=True, text=True, timeout=900
    )
    assert built.returncode == 0, f"scripts/image build failed:\n{built.stderr[-5000:]}"
    try:
        inspected = subprocess.run(
            ["buildah", "inspect", "--type=image", tag], capture_output=True, check=True
        )
        yield Image(tag, json.loads(inspected.stdout)["Docker"]["config"])
    finally:
        subprocess.run(["buildah", "rmi", tag], capture_output=True, check=True)


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[str]:
    """A working container of the image, removed afterwards."""
    name = f"interaction-consumer-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["buildah", "from", "--pull=never", f"--name={name}", image.tag],
        capture_output=True,
        check=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, check=True)


def test_image_runs_as_10001_through_an_exec_form_entry_point_with_a_healthcheck(
    image: Image,
) -> None:
    """The built image's user is 10001, its entry point exec-form, its HEALTHCHECK on /healthz."""
    assert image.config["User"].split(":")[0] == "10001"
    assert image.config["Entrypoint"] == ["interaction-consumer"]
    assert image.config["Cmd"] == ["run"]
    check = image.config["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    assert "http://127.0.0.1:8080/healthz" in " ".join(check)
    assert "8080/tcp" in image.config["ExposedPorts"]


def test_daemon_from_image_alerts_and_stops_cleanly_on_sigterm(
    image: Image, container: str, broker: Broker, topic: str, tmp_path: Path
) -> None:
    """From the image, as uid 10001: healthy, ready, a stall alert, exit 0 within the grace."""
    settings = {**FAST, "RUNTIME_SHUTDOWN_GRACE_SECONDS": str(GRACE)}
    daemon = ImageDaemon(broker, topic, settings, image=image, container=container)
    try:
        daemon.start(tmp_path / "daemon.log")
        daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
        status = Path(f"/proc/{daemon.entry_process()}/status").read_text()
        (uids,) = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
        assert set(uids) == {"10001"}

        # the image's own health check, pointed at this daemon's port
        probe = [
            part.replace("8080", str(daemon.port))
            for part in image.config["Healthcheck"]["Test"][1:]
        ]
        assert subprocess.run(in_container(container, probe), capture_output=True).returncode == 0

        now = time.time()
        produce(broker, topic, [snapshot("image-stalled", created=now - 2, previewing=now - 1)])
        (alert,) = alerts(alerts_until(broker, daemon.alerts_topic, 1))
        assert (alert["status"], alert["interactionId"], alert["rule"]) == (
            "firing",
            "image-stalled",
            "previewing",
        )
        assert daemon.stop(signal.SIGTERM, timeout=GRACE) == 0
        assert "stopped" in [e["event"] for e in daemon.log_events()]
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)


def test_replay_from_image_reads_a_mounted_dump(
    image: Image, container: str, tmp_path: Path
) -> None:
    """``replay`` through the entry point reads a dump mounted into the container."""
    now = time.time()
    records = [
        snapshot("replayed-stall", created=now - 400, previewing=now - 390),
        snapshot(
            "replayed-fine", active=False, created=now - 60, placed=now - 50, wrapped_up=now - 5
        ),
    ]
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"".join(r.value + b"\n" for r in records if r.value) + b"not json\n")
    replayed = subprocess.run(
        in_container(
            container,
            image.command("replay", "/data/dump.jsonl", "--end-time", iso(now)),
            mounts={dump: "/data/dump.jsonl"},
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replayed.returncode == 0, replayed.stderr
    fired = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert [(a["status"], a["interactionId"], a["rule"]) for a in fired] == [
        ("firing", "replayed-stall", "previewing")
    ]
    assert "/data/dump.jsonl:3: invalid record (not_json)" in replayed.stderr


# Run inside the image: import every module of the package (as the commands may), then
# report the installed distribution's files and whether tests or bench could be imported.
INSTALLED = """
import importlib, importlib.metadata, importlib.util, json, pkgutil, sys
import consumer
for module in pkgutil.walk_packages(consumer.__path__, "consumer."):
    if module.name != "consumer.__main__":  # it runs the command line
        importlib.import_module(module.name)
print(json.dumps({
    "files": [str(f) for f in importlib.metadata.files("interaction-consumer")],
    "loaded": sorted(sys.modules),
    "findable": [n for n in ("tests", "bench") if importlib.util.find_spec(n)],
}))
"""


def test_image_installs_the_whole_package_and_nothing_of_tests_or_bench(
    image: Image, container: str
) -> None:
    """The installed wheel has every module of consumer/, imports alone, and no tests or bench."""
    ran = subprocess.run(
        in_container(container, ["python", "-c", INSTALLED]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    installed = {f for f in report["files"] if f.endswith(".py")}
    checkout = {p.relative_to(ROOT).as_posix() for p in (ROOT / "consumer").rglob("*.py")}
    assert installed == checkout
    assert not [f for f in report["files"] if f.startswith(("tests/", "bench/"))]
    assert not [m for m in report["loaded"] if m.split(".")[0] in ("tests", "bench")]
    assert report["findable"] == []

    simulated = subprocess.run(
        in_container(
            container, image.command("simulate", "--output", "-", "--seconds", "1", "--seed", "7")
        ),
        capture_output=True,
        timeout=120,
    )
    assert simulated.returncode == 0, simulated.stderr
    printed = [json.loads(line) for line in simulated.stdout.splitlines()]
    assert [r for r in printed if r["topic"] == "simulated" and r["payload"]]


def test_image_runs_the_compiled_engine(container: str) -> None:
    """The image's engine is the one its build stage compiled with mypyc, not the source."""
    ran = subprocess.run(
        in_container(
            container, ["python", "-c", "import consumer.engine as e; print(e.compiled())"]
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "True"
