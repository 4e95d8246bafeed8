"""The Helm chart rendered, and the environment Kubernetes gives each of its containers.

Shared by the unit contract test (tests/unit/deploy/test_chart.py) and the image test that runs
the built image with that environment (tests/integration/test_chart_image.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.machine import tool

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "interaction-consumer"
NAMESPACE = "dialer"
# docs/operate/deploying.md installs it under this name, so its Service is
# interaction-consumer, and the service links INTERACTION_CONSUMER_SERVICE_HOST... look
# like settings
RELEASE = "interaction-consumer"
# what docs/operate/deploying.md's install sets: the image pushed, the Secret made out of band,
# kube-prometheus-stack's release label, an org label on the alerts
VALUES = {
    "image.repository": "registry.example.com/dialer/interaction-consumer",
    "existingSecret": "interaction-consumer-credentials",
    "monitoring.labels.release": "kube-prometheus-stack",
    "alertLabels.org": "acme",
}
# the Secret's keys (docs/operate/deploying.md), with made-up values
SECRET = {
    "kafka-sasl-password": "kafka-password",
    "genesys-client-id": "client-id",
    "genesys-client-secret": "client-secret",
}
SERVICE_IP = "10.96.0.10"


def helm() -> str:
    """The helm binary: on the PATH, else where scripts/setup-tools puts it (Go's bin)."""
    found = shutil.which("helm")
    if found is None and shutil.which("go") is not None:
        gobin = subprocess.run(
            ["go", "env", "GOBIN", "GOPATH"], capture_output=True, text=True, check=True
        ).stdout.split("\n")
        candidate = Path(gobin[0] or Path(gobin[1]) / "bin") / "helm"
        found = str(candidate) if candidate.exists() else None
    return found or tool("helm")


def render(
    values: Mapping[str, str] = VALUES, files: Mapping[str, Path] | None = None
) -> list[dict[str, Any]]:
    """``helm template`` of the chart with ``values`` (--set) and ``files`` (--set-file)."""
    sets = [f"--set={name}={value}" for name, value in values.items()]
    sets += [f"--set-file={name}={path}" for name, path in (files or {}).items()]
    done = subprocess.run(
        [helm(), "template", RELEASE, str(CHART), f"--namespace={NAMESPACE}", *sets],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [o for o in objects if o["kind"] == kind]


def _link_name(service: str) -> str:
    return service.upper().replace("-", "_")


def service_links(services: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The variables the kubelet injects for ``services`` (pkg/kubelet/envvars)."""
    env: dict[str, str] = {}
    for service in services:
        name = _link_name(service["metadata"]["name"])
        ports = service["spec"]["ports"]
        env[f"{name}_SERVICE_HOST"] = SERVICE_IP
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            proto = port.get("protocol", "TCP")
            if "name" in port:
                env[f"{name}_SERVICE_PORT_{_link_name(port['name'])}"] = str(port["port"])
            prefix = f"{name}_PORT_{port['port']}_{proto}"
            env[prefix] = f"{proto.lower()}://{SERVICE_IP}:{port['port']}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(port["port"])
            env[f"{prefix}_ADDR"] = SERVICE_IP
        first = ports[0]
        env[f"{name}_PORT"] = (
            f"{first.get('protocol', 'TCP').lower()}://{SERVICE_IP}:{first['port']}"
        )
    return env


@dataclass(frozen=True)
class Container:
    """One workload's container as Kubernetes would start it."""

    workload: str
    spec: dict[str, Any]
    pod: dict[str, Any]
    env: dict[str, str]
    files: dict[str, str]  # path in the container -> content

    @property
    def args(self) -> list[str]:
        """The command line after the entry point."""
        args: list[str] = self.spec["args"]
        return args

    def port(self, name_or_number: str | int) -> int:
        """The container port a probe or monitor names."""
        if isinstance(name_or_number, int):
            return name_or_number
        (port,) = [p for p in self.spec["ports"] if p["name"] == name_or_number]
        number: int = port["containerPort"]
        return number

    def write_files(self, root: Path) -> dict[str, Path]:
        """The mounted files written under ``root``: path in the container -> host path."""
        written = {}
        for inside, content in self.files.items():
            host = root / inside.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_text(content)
            written[inside] = host
        return written


def containers(
    objects: list[dict[str, Any]], secret: Mapping[str, str] = SECRET, links: bool = True
) -> list[Container]:
    """Each Deployment's container with its environment and mounted ConfigMap files.

    ``env`` (values, Secret keys, the pod's name), ``envFrom``, and the service links of
    every Service of the release, as Kubernetes injects them where the pod does not say
    ``enableServiceLinks: false`` (``links=True`` adds them anyway: the settings must
    load either way). A Secret key that is missing and not optional fails, as the
    kubelet refuses to start such a container.
    """
    config_maps = {c["metadata"]["name"]: c["data"] for c in of_kind(objects, "ConfigMap")}
    services = of_kind(objects, "Service")
    found = []
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for spec in pod["containers"]:
            env: dict[str, str] = {
                "KUBERNETES_SERVICE_HOST": "10.96.0.1",
                "KUBERNETES_SERVICE_PORT": "443",
            }
            if links or pod.get("enableServiceLinks", True):
                env |= service_links(services)
            for source in spec.get("envFrom", []):
                if "secretRef" in source:
                    env |= dict(secret)
                else:
                    env |= config_maps[source["configMapRef"]["name"]]
            for var in spec.get("env", []):
                value = _value(var, secret, deployment["metadata"]["name"])
                if value is not None:
                    env[var["name"]] = value
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            files = {}
            for mount in spec.get("volumeMounts", []):
                data = config_maps[volumes[mount["name"]]["configMap"]["name"]]
                for key, content in data.items():
                    files[f"{mount['mountPath']}/{key}"] = content
            found.append(Container(deployment["metadata"]["name"], spec, pod, env, files))
    return found


def _value(var: dict[str, Any], secret: Mapping[str, str], workload: str) -> str | None:
    if "value" in var:
        return str(var["value"])
    source = var["valueFrom"]
    if "fieldRef" in source:
        assert source["fieldRef"]["fieldPath"] == "metadata.name", source
        return f"{workload}-5d8f9c7b6-x2x9k"
    ref = source["secretKeyRef"]
    if ref["key"] in secret:
        return secret[ref["key"]]
    assert ref.get("optional"), f"{var['name']}: Secret key {ref['key']} missing, not optional"
    return None


def check_config(container: Container, root: Path) -> subprocess.CompletedProcess[str]:
    """``interaction-consumer check-config`` with the container's environment and files."""
    files = container.write_files(root)
    args = [str(files.get(a, a)) for a in container.args]
    command, rest = args[0], args[1:]
    env = dict(container.env) | {"PATH": os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "consumer", "check-config", "--for", command, *rest],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
