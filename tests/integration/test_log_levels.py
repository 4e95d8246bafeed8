"""ERROR in the daemon's log means a person is needed: never on a healthy run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.integration.harness import (
    Broker,
    Daemon,
    Sent,
    alerts,
    free_port,
    produce,
    read_topic,
    wait_for,
)
from tests.integration.test_daemon import FAST, committed_everything, snapshot


def test_start_batch_and_sigterm_log_no_error(broker: Broker, topic: str, tmp_path: Path) -> None:
    """A normal start, a batch with an alert and a dead letter, and a SIGTERM: no ERROR line."""
    daemon = Daemon(broker, topic, FAST).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    now = time.time()
    produce(
        broker,
        topic,
        [snapshot("quiet-run", created=now - 2, previewing=now - 1), Sent(b"junk", b"{")],
    )
    wait_for(
        lambda: read_topic(broker, daemon.alerts_topic, idle=1.0),
        lambda got: any(a["interactionId"] == "quiet-run" for a in alerts(got)),
        timeout=40,
    )
    assert committed_everything(broker, topic, daemon.group, timeout=30)
    assert daemon.stop(signal.SIGTERM) == 0
    events = daemon.log_events()
    levels = {e["level"] for e in events}
    print(f"\nnormal run: {len(events)} log lines, levels {sorted(levels)}")
    assert {"consuming", "dead_letter", "stall_firing", "stopped"} <= {e["event"] for e in events}
    assert "ERROR" not in levels, daemon.logs()
    assert all(line.startswith("{") for line in daemon.logs().splitlines()), daemon.logs()


def test_stopped_before_any_broker_answered_is_one_error_and_exit_3(tmp_path: Path) -> None:
    """No broker ever reachable: retries as warnings; a SIGTERM then exits 3, naming the setting."""
    nowhere = f"127.0.0.1:{free_port()}"
    daemon = Daemon(Broker(nowhere), "interactions-nowhere", FAST).start(tmp_path / "daemon.log")
    retry = daemon.wait_log("broker_unavailable", timeout=30)
    assert retry["level"] == "WARNING"
    assert daemon.stop(signal.SIGTERM) == 3
    errors = [e for e in daemon.log_events() if e["level"] == "ERROR"]
    print(f"\nno broker: retried ({retry['error']}), then {errors}")
    assert [(e["event"], e["setting"]) for e in errors] == [
        ("not_connected", "kafka.bootstrap_servers")
    ]
    assert (
        f"no broker reachable at kafka.bootstrap_servers ({nowhere}: connection refused)"
        in (errors[0]["error"])
    )
    text = daemon.logs()
    assert all(line.startswith("{") for line in text.splitlines()), text
    assert "unclosed" not in text.lower(), text
