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
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from consumer.engine.model import BUCKET_HEADER
from consumer.formats import heartbeat
from tests.integration.harness import ROOT, Broker, Daemon, Sent, produce
from tests.integration.test_daemon import FAST, alerts_until, snapshot
from tests.machine import free_port, tool

DEPLOY = ROOT / "deploy"
SOURCE = "poller-test"


def heartbeats(up_to: float, partitions: int = 3) -> list[Sent]:
    """One heartbeat of ``SOURCE`` to every partition, as a producer sends after a round."""
    value = heartbeat.encode(SOURCE, up_to, 1.0)
    marked = ((heartbeat.HEADER, SOURCE.encode()),)
    return [
        Sent(SOURCE.encode(), value, timestamp=up_to, partition=p, headers=marked)
        for p in range(partitions)
    ]


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
            # series that exist only once seen: heartbeats (their age, silent sources) and
            # a producer whose clock runs an hour ahead (records from the future)
            *heartbeats(now),
            snapshot("ahead", created=now + 3600),
            # the pending backlog exists only for records the poller placed in that list
            replace(snapshot("waiting", created=now - 9), headers=((BUCKET_HEADER, b"pending"),)),
        ],
    )
    # the Alertmanager sink's series (which rules watch) exist where a sink is configured
    sink = {"ALERTMANAGER_URLS": '["http://127.0.0.1:9"]'}
    daemon = Daemon(broker, topic, FAST | sink).start(tmp_path / "daemon.log")
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


def watched_daemon(
    broker: Broker, topic: str, servers: tuple[int, int, Path], **settings: str
) -> Daemon:
    """A daemon started on the port Prometheus scrapes, posting to the Alertmanager."""
    am_port, _, tmp_path = servers
    prom_config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    target = prom_config["scrape_configs"][0]["static_configs"][0]["targets"][0]
    return Daemon(
        broker,
        topic,
        {
            **FAST,
            "ALERTMANAGER_URLS": f'["http://127.0.0.1:{am_port}"]',
            "ALERTMANAGER_RESEND_SECONDS": "2",
            **settings,
        },
        port=int(target.rsplit(":", 1)[1]),
    ).start(tmp_path / "daemon.log")


def test_end_to_end_with_real_prometheus_and_alertmanager(
    broker: Broker, topic: str, servers: tuple[int, int, Path]
) -> None:
    """Prometheus scrapes and alerts, the sink posts per-interaction alerts, all resolve."""
    am_port, prom_port, tmp_path = servers
    daemon = watched_daemon(broker, topic, servers)
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


def test_a_silent_source_pages_the_oncall_and_holds_the_stall_alerts(
    broker: Broker, topic: str, servers: tuple[int, int, Path]
) -> None:
    """A silent feed pages the on-call (service and rule), inhibits stall alerts, resolves."""
    am_port, _, tmp_path = servers
    daemon = watched_daemon(broker, topic, servers, RUNTIME_SOURCE_SILENT_SECONDS="3")
    now = time.time()
    # one round of heartbeats and a preview nobody placed, due before the heartbeat vouches
    # for (no stall is judged past it), then the producer falls silent
    produce(
        broker, topic, [*heartbeats(now), snapshot("stuck", created=now - 5, previewing=now - 4)]
    )

    eventually(
        "the service's and the rule's DialerSourceSilent in Alertmanager",
        lambda: len(am_alerts(am_port, "DialerSourceSilent")) == 2,
    )
    silent = am_alerts(am_port, "DialerSourceSilent")
    assert {a["labels"].get("source") for a in silent} == {SOURCE, None}  # the rule's has none
    assert all(a["labels"]["topic"] == topic for a in silent)
    assert all(a["labels"]["severity"] == "critical" for a in silent)
    eventually(
        "the stall alert, inhibited by the silence",
        lambda: any(a["status"]["inhibitedBy"] for a in am_alerts(am_port, "DialerPreviewStalled")),
    )
    eventually(
        "the platform on-call to be notified of the silence, grouped per topic",
        lambda: any(
            n.get("receiver") == "platform-oncall"
            and n["groupLabels"] == {"alertname": "DialerSourceSilent", "topic": topic}
            for n in Catcher.received
        ),
    )

    stop = threading.Event()

    def beat() -> None:  # the producer is back: a round of heartbeats a second
        while True:
            produce(broker, topic, heartbeats(time.time()))
            if stop.wait(1.0):
                return

    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        eventually(
            "the silence to resolve in Alertmanager",
            lambda: not am_alerts(am_port, "DialerSourceSilent"),
        )
        (stalled,) = am_alerts(am_port, "DialerPreviewStalled")
        assert stalled["labels"]["interaction_id"] == "stuck"
        assert not stalled["status"]["inhibitedBy"]
    finally:
        stop.set()
        beating.join(timeout=30)
    assert daemon.stop() == 0
    assert "alertmanager_post_failed" not in (tmp_path / "daemon.log").read_text()
