"""deploy/ and the Dockerfile: what can be checked without a cluster or a Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from consumer.config_load import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def manifest(name: str) -> dict[str, Any]:
    """One Kubernetes manifest, parsed."""
    loaded: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return loaded


def test_prometheusrule_is_generated_from_the_tested_rules(tmp_path: Path) -> None:
    """The committed PrometheusRule is exactly what the generator makes of rules.yml."""
    fresh = tmp_path / "prometheusrule.yaml"
    subprocess.run([str(ROOT / "scripts" / "gen-prometheusrule"), str(fresh)], check=True)
    assert fresh.read_text() == (K8S / "prometheusrule.yaml").read_text()
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    assert manifest("prometheusrule.yaml")["spec"] == rules


def test_deployment_probes_grace_and_hardening() -> None:
    """Probes hit the health endpoints; grace exceeds the shutdown grace; non-root, read-only."""
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings_text = manifest("configmap.yaml")["data"]["settings.toml"]
    grace = tomllib.loads(settings_text)["runtime"]["shutdown_grace_seconds"]
    assert pod["terminationGracePeriodSeconds"] > grace
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]


def test_configmap_settings_are_valid(tmp_path: Path) -> None:
    """The settings shipped in the ConfigMap load, with the password from the Secret's env."""
    path = tmp_path / "settings.toml"
    path.write_text(manifest("configmap.yaml")["data"]["settings.toml"])
    env = {"INTERACTION_CONSUMER_KAFKA_SASL_PASSWORD": "x"}
    settings = load_settings(path, env=env)
    assert settings.alertmanager.urls
    assert settings.kafka.security_protocol == "SASL_SSL"


def test_kustomization_lists_every_manifest() -> None:
    """Every manifest in deploy/kubernetes is applied by the kustomization, and only those."""
    listed = set(manifest("kustomization.yaml")["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_podmonitor_scrapes_the_http_port_as_the_rules_job() -> None:
    """The PodMonitor scrapes the named http port and labels the job the rules expect."""
    endpoint = manifest("podmonitor.yaml")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "http"
    assert endpoint["relabelings"][0]["replacement"] == "interaction-consumer"


def test_dockerfile_is_multistage_non_root_exec_form_with_healthcheck() -> None:
    """Two stages, a numeric non-root USER, exec-form ENTRYPOINT and a HEALTHCHECK."""
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sum(line.startswith("FROM ") for line in lines) == 2
    user = next(line for line in lines if line.startswith("USER "))
    assert not user.split()[1].startswith(("0", "root"))
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["interaction-consumer"]
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_dashboard_queries_are_promql_over_our_metrics() -> None:
    """Every dashboard panel has a query, and each names a dialer_ metric or up."""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "interaction-consumer.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    assert all("dialer_" in e or "up{" in e for e in exprs)


def test_poller_deployment_is_one_replica_with_its_secret_from_the_secret(tmp_path: Path) -> None:
    """One poller, never two (Recreate); credentials from the Secret; probes; settings load."""
    deployment = manifest("poller-deployment.yaml")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "poll"
    env = {e["name"]: e for e in container["env"]}
    secret = manifest("secret.yaml")
    for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    assert "value" not in env["GENESYS_CLIENT_SECRET"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    path = tmp_path / "settings.toml"
    path.write_text(manifest("configmap.yaml")["data"]["settings.toml"])
    env_values = {"INTERACTION_CONSUMER_KAFKA_SASL_PASSWORD": "x"}
    assert load_settings(path, env=env_values).genesys.api_url is not None
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = manifest("poller-podmonitor.yaml")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()


RUNBOOK_BASE = "https://docs.example.com/interaction-consumer/README.md"


def readme_anchors() -> set[str]:
    """The anchors of README.md's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_an_absolute_runbook_url_to_a_readme_heading() -> None:
    """Each alerting rule's runbook_url is the docs base plus an anchor the README has."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    anchors = readme_anchors()
    for rule in alerts:
        base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert base == RUNBOOK_BASE, rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, rule["alert"]


def test_every_inhibition_is_scoped_to_one_deployment() -> None:
    """No inhibition without `equal`; each names namespace and org (one deployment's)."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    for rule in config["inhibit_rules"]:
        assert {"namespace", "org"} <= set(rule["equal"]), rule
