"""deploy/ and the Dockerfile: what can be checked without a cluster or a Docker engine.

The Helm chart has tests of its own (tests/unit/deploy/test_chart.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.markdown import anchors

ROOT = Path(__file__).resolve().parents[3]
# the rules' runbook links: docs/operate/runbook.md served here (the chart's runbookBaseUrl
# replaces it)
RUNBOOK = ROOT / "docs" / "operate" / "runbook.md"
RUNBOOK_BASE = "https://docs.example.com/interaction-consumer/docs/operate/runbook.md"


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
    """Every dashboard panel has a query, and each names a dialer_ or poller metric, or up."""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "interaction-consumer.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    assert all(any(name in e for name in ("dialer_", "genesys_poller_", "up{")) for e in exprs)


def test_every_alert_has_an_absolute_runbook_url_to_a_runbook_heading() -> None:
    """Each alerting rule's runbook_url is the docs base plus an anchor the runbook has."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    headings = anchors(RUNBOOK)
    for rule in alerts:
        base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert base == RUNBOOK_BASE, rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in headings, rule["alert"]


def test_every_inhibition_is_scoped_to_one_deployment() -> None:
    """No inhibition without `equal`; each names namespace and org (one deployment's)."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    for rule in config["inhibit_rules"]:
        assert {"namespace", "org"} <= set(rule["equal"]), rule
