"""The Helm chart's contract: what it renders starts, is scraped, alerts and is protected.

Each workload's container gets the environment Kubernetes would give it (tests/chart.py)
and passes ``interaction-consumer check-config`` with it, as its start would.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import (
    CHART,
    NAMESPACE,
    ROOT,
    VALUES,
    check_config,
    containers,
    of_kind,
    render,
)
from tests.unit.deploy.test_deploy import RUNBOOK_BASE


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    """The chart rendered with the values docs/operate/deploying.md installs."""
    return render()


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    """An object's labels."""
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels


def monitor_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The monitor's (the daemon's) Deployment."""
    (deployment,) = [
        d
        for d in of_kind(objects, "Deployment")
        if d["spec"]["template"]["spec"]["containers"][0]["args"][0] == "run"
    ]
    return deployment


def test_every_container_passes_the_config_check_with_its_pod_environment(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Env, Secret keys, mounted settings and service links: check-config exits 0 for each."""
    found = containers(objects)
    assert {c.args[0] for c in found} == {"run", "poll"}
    for container in found:
        done = check_config(container, tmp_path / container.workload)
        assert done.returncode == 0, f"{container.workload}: {done.stderr}"
        settings = json.loads(done.stdout)
        # the probes and the monitors hit the port the service serves on
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container.spec:
                port = container.port(container.spec[probe]["httpGet"]["port"])
                assert port == settings["http"]["port"], (container.workload, probe)
        assert settings["alertmanager"]["labels"] == {"namespace": NAMESPACE, "org": "acme"}
        assert all(".alertmanager-operated." in u for u in settings["alertmanager"]["urls"])
        assert settings["kafka"]["sasl_password"] == "***"  # noqa: S105 - the redaction


def test_a_missing_secret_key_or_setting_fails_the_check(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The check is real: the poller without its credentials, or a bad setting, exits 2."""
    poller = next(c for c in containers(objects) if c.args[0] == "poll")
    env = {k: v for k, v in poller.env.items() if k != "GENESYS_CLIENT_SECRET"}
    without = dataclasses.replace(poller, env=env)
    assert check_config(without, tmp_path / "a").returncode == 2
    broken = containers(render(VALUES | {"config": "[kafka]\ntopics = 1\n"}))[0]
    done = check_config(broken, tmp_path / "b")
    assert done.returncode == 2
    assert "kafka.topics: unknown setting" in done.stderr


def test_no_secret_is_rendered_and_every_reference_is_the_existing_one(
    objects: list[dict[str, Any]],
) -> None:
    """The chart never applies a Secret (no placeholder over the real one) and reads its own."""
    assert not of_kind(objects, "Secret")
    for container in containers(objects):
        for var in container.spec["env"]:
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == VALUES["existingSecret"]
    with pytest.raises(AssertionError, match="existingSecret"):
        render({k: v for k, v in VALUES.items() if k != "existingSecret"})


def test_the_image_is_the_version_the_build_makes(objects: list[dict[str, Any]]) -> None:
    """Both workloads run the pushed image at the package's version (the chart's appVersion)."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == version
    for container in containers(objects):
        assert container.spec["image"] == f"{VALUES['image.repository']}:{version}"


def test_pods_are_hardened_spread_and_without_service_links(
    objects: list[dict[str, Any]],
) -> None:
    """No service links, non-root, read-only, spread over nodes; grace over shutdown grace."""
    for container in containers(objects):
        pod = container.pod
        assert pod["enableServiceLinks"] is False
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container.spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert container.spec["resources"]["requests"]
        settings = tomllib.loads(container.files["/etc/interaction-consumer/settings.toml"])
        assert pod["terminationGracePeriodSeconds"] > settings["runtime"]["shutdown_grace_seconds"]
    monitor = next(
        d for d in of_kind(objects, "Deployment") if "poller" not in d["metadata"]["name"]
    )
    template = monitor["spec"]["template"]
    spread = template["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    for constraint in spread:
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()


def test_the_pdb_lets_unhealthy_pods_go_and_covers_the_monitor(
    objects: list[dict[str, Any]],
) -> None:
    """One voluntary departure at a time; pods not ready never block a drain."""
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["spec"]["maxUnavailable"] == 1
    monitor = next(
        d for d in of_kind(objects, "Deployment") if "poller" not in d["metadata"]["name"]
    )
    pod_labels = monitor["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_network_policy_admits_only_the_named_peers_to_the_http_port(
    objects: list[dict[str, Any]],
) -> None:
    """Ingress to both workloads' http port from the configured peers only."""
    (policy,) = of_kind(objects, "NetworkPolicy")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for deployment in of_kind(objects, "Deployment"):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"]


def test_monitors_and_rules_carry_the_operators_selector_labels(
    objects: list[dict[str, Any]],
) -> None:
    """PodMonitors and the PrometheusRule carry release; each monitor selects its pods' port."""
    monitors = of_kind(objects, "PodMonitor")
    (rule,) = of_kind(objects, "PrometheusRule")
    for obj in [*monitors, rule]:
        assert labels_of(obj)["release"] == "kube-prometheus-stack"
    jobs = {}
    for monitor in monitors:
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        relabel = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
        assert relabel["org"] == "acme"
        (deployment,) = [
            d
            for d in of_kind(objects, "Deployment")
            if monitor["spec"]["selector"]["matchLabels"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
        jobs[container["args"][0]] = relabel["job"]
    # the jobs the rules match on
    assert jobs == {"run": "interaction-consumer", "poll": "interaction-consumer-poller"}


def test_the_rule_is_the_tested_rules_with_the_runbook_base_given() -> None:
    """The PrometheusRule is deploy/prometheus/rules.yml, runbook links on runbookBaseUrl."""
    base = "https://wiki.example.org/dialer/runbook.md"
    (rule,) = of_kind(render(VALUES | {"runbookBaseUrl": base}), "PrometheusRule")
    text = (ROOT / "deploy" / "prometheus" / "rules.yml").read_text()
    assert rule["spec"] == yaml.safe_load(text.replace(f"{RUNBOOK_BASE}#", f"{base}#"))
    assert (CHART / "files" / "rules.yml").resolve() == ROOT / "deploy" / "prometheus" / "rules.yml"


def test_the_poller_can_be_left_out() -> None:
    """poller.enabled=false renders neither the poller nor its PodMonitor."""
    objects = render(VALUES | {"poller.enabled": "false"})
    assert [c.args[0] for c in containers(objects)] == ["run"]
    assert len(of_kind(objects, "PodMonitor")) == 1


def test_the_monitor_expects_the_pollers_source_only_while_the_poller_runs(
    objects: list[dict[str, Any]],
) -> None:
    """The daemon expects the poller's heartbeats, by the id the poller sends, only if enabled."""
    by_command = {c.args[0]: c for c in containers(objects)}
    expected = json.loads(by_command["run"].env["INTERACTION_CONSUMER_RUNTIME_EXPECTED_SOURCES"])
    assert expected == [by_command["poll"].env["INTERACTION_CONSUMER_GENESYS_SOURCE_ID"]]
    (alone,) = containers(render(VALUES | {"poller.enabled": "false"}))
    assert "INTERACTION_CONSUMER_RUNTIME_EXPECTED_SOURCES" not in alone.env


def test_the_poller_is_one_replica_never_two(objects: list[dict[str, Any]]) -> None:
    """One poller per OAuth client, replaced by Recreate: never two at once."""
    (poller,) = [d for d in of_kind(objects, "Deployment") if d is not monitor_deployment(objects)]
    assert poller["spec"]["replicas"] == 1
    assert poller["spec"]["strategy"]["type"] == "Recreate"
