"""deploy/ against the real servers: promtool, amtool, Prometheus and Alertmanager.

Everything listens on 127.0.0.1; the example receivers' URLs are pointed at a webhook
catcher of the test's own, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.integration.harness import ROOT, Broker, Daemon, Sent, free_port, produce, tool
from tests.integration.test_daemon import FAST, alerts_until, snapshot

DEPLOY = ROOT / "deploy"


def run(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a tool; fail with its output if it fails."""
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    return done


def test_promtool_rule_unit_tests_pass() -> None:
    """The alerting and recording rules pass their promtool unit tests."""
    run(tool("promtool"), "test", "rules", str(DEPLOY / "prometheus" / "rules.test.yml"))


def test_example_configs_are_valid() -> None:
    """Promtool accepts the Prometheus config and rules; amtool the Alertmanager config."""
    run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))


def queried_metrics() -> set[str]:
    """Every metric name used by a rule or a dashboard query (recorded names excluded)."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    exprs = [str(r["expr"]) for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "interaction-consumer.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {name for e in exprs for name in re.findall(r"\bdialer_[a-z_]+\b", e)}


def test_rules_and_dashboard_use_only_exported_metrics(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Each metric a rule or panel queries is in a live /metrics, which promtool accepts."""
    now = time.time()
    produce(
        broker,
        topic,
        [
            snapshot("s", created=now - 9, previewing=now - 8),
            snapshot("n", created=now - 9, previewing=now - 8, placed=now - 5, routed=now - 4),
            Sent(b"junk", b"not json"),
        ],
    )
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    alerts_until(broker, daemon.alerts_topic, wanted=1)
    _, exposition = daemon.get("/metrics")
    assert daemon.stop() == 0
    exported = set(re.findall(r"^(dialer_[a-z_]+)", exposition.decode(), re.MULTILINE))
    assert queried_metrics() <= exported, queried_metrics() - exported
    checked = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


class Catcher(BaseHTTPRequestHandler):
    """Records the webhook notifications Alertmanager sends."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Catcher.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[str]:
    """A webhook receiver on loopback; its URL."""
    Catcher.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Catcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def get_json(url: str) -> Any:
    """GET a JSON API."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def eventually(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except OSError:
            pass  # not up yet
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def servers(tmp_path: Path, webhook: str) -> Iterator[tuple[int, int, Path]]:
    """Alertmanager and Prometheus on loopback, run from deploy/ configs made fast.

    The copies differ from deploy/ only where a test must: loopback addresses, second
    intervals, ``for`` durations of zero, and the receivers' URLs.
    """
    am_port, prom_port, target_port = free_port(), free_port(), free_port()
    am_config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in am_config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook}/{receiver['name']}"
    for route in [am_config["route"], *am_config["route"]["routes"]]:
        route["group_wait"] = "1s"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))

    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    prom_config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    prom_config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prom_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{am_port}"
    ]
    (job,) = prom_config["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{target_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))

    logs = (tmp_path / "alertmanager.log").open("wb"), (tmp_path / "prometheus.log").open("wb")
    processes = [
        subprocess.Popen(
            [
                tool("prometheus-alertmanager"),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip port: a single node on loopback
            ],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        yield am_port, prom_port, tmp_path
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        for log in logs:
            log.close()


def am_alerts(am_port: int, alertname: str) -> list[dict[str, Any]]:
    """Alertmanager's active alerts of one name."""
    query = urllib.parse.quote(f'alertname="{alertname}"')
    alerts: list[dict[str, Any]] = get_json(
        f"http://127.0.0.1:{am_port}/api/v2/alerts?filter={query}"
    )
    return alerts


def test_end_to_end_with_real_prometheus_and_alertmanager(
    broker: Broker, topic: str, servers: tuple[int, int, Path]
) -> None:
    """Prometheus scrapes and alerts, the sink posts per-interaction alerts, all resolve."""
    am_port, prom_port, tmp_path = servers
    prom_config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    target = prom_config["scrape_configs"][0]["static_configs"][0]["targets"][0]
    daemon = Daemon(
        broker,
        topic,
        {
            **FAST,
            "ALERTMANAGER_URLS": f'["http://127.0.0.1:{am_port}"]',
            "ALERTMANAGER_RESEND_SECONDS": "2",
        },
        port=int(target.rsplit(":", 1)[1]),
    ).start(tmp_path / "daemon.log")
    now = time.time()
    stuck = [f"stuck-{n}" for n in range(7)]  # more than the rule's 5 in one campaign
    produce(broker, topic, [snapshot(i, created=now - 2, previewing=now - 1) for i in stuck])
    alerts_until(broker, daemon.alerts_topic, wanted=7)

    prom = f"http://127.0.0.1:{prom_port}/api/v1"
    eventually(
        "the target to be scraped as up",
        lambda: any(
            t["health"] == "up" for t in get_json(f"{prom}/targets")["data"]["activeTargets"]
        ),
    )
    eventually(
        "every rule to evaluate cleanly",
        lambda: all(
            r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20")
            for g in get_json(f"{prom}/rules")["data"]["groups"]
            for r in g["rules"]
        ),
    )
    (aggregate,) = eventually(
        "the aggregate alert in Alertmanager",
        lambda: am_alerts(am_port, "DialerStalledPreviewsHigh"),
    )
    assert aggregate["labels"]["campaign"] == "camp-1"
    per_interaction = eventually(
        "the per-interaction alerts in Alertmanager",
        lambda: (lambda found: found if len(found) == len(stuck) else [])(
            am_alerts(am_port, "DialerPreviewStalled")
        ),
    )
    assert {a["labels"]["interaction_id"] for a in per_interaction} == set(stuck)
    assert all(a["labels"]["stage"] == "previewing" for a in per_interaction)
    eventually(
        "the supervisors' receiver to be notified",
        lambda: any(n.get("receiver") == "dialer-supervisors" for n in Catcher.received),
    )

    later = time.time()
    produce(
        broker,
        topic,
        [
            snapshot(i, created=now - 2, previewing=now - 1, placed=later, connected=later)
            for i in stuck
        ],
    )
    eventually(
        "the per-interaction alerts to resolve in Alertmanager",
        lambda: not am_alerts(am_port, "DialerPreviewStalled"),
    )
    assert daemon.stop() == 0
    text = (tmp_path / "daemon.log").read_text()
    assert "alertmanager_post_failed" not in text
