"""A flood of interaction ids on a real broker: one memory budget per process holds.

A producer that emits unique ids (a bug, a replay) used to grow the tracked state up to
a million interactions per partition, past the pod's memory limit, and past it again on
every restore. With a budget the monitor sheds the least recently updated interactions
of the whole process, counts them, keeps watching the live ones, and restores within
the budget with the event loop free to answer ``/healthz``.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from consumer import engine
from consumer.daemon import memory
from tests.integration.harness import Broker, Daemon, Sent, alerts, produce
from tests.integration.test_daemon import alerts_until, snapshot

BUDGET = 20_000
FLOOD = 60_000  # three times the budget, unique ids, on the three partitions
THRESHOLD = 20.0  # the stuck preview's; the flood is in well before it comes due
SHED = {"reason": "budget", "stall": "none"}


def _settings() -> dict[str, str]:
    cost = memory.bytes_per_interaction(engine.compiled())  # the daemon runs this build
    return {
        "TRACKING_MEMORY_LIMIT_BYTES": str(BUDGET * cost),
        "STALLS_THRESHOLDS": f"{{ previewing = {THRESHOLD} }}",
    }


def _flood(now: float, stuck: Sent) -> list[Sent]:
    """Unique power calls (no stall), the stuck preview re-sent every 4,000, as a poller would."""
    records = [stuck]
    for n in range(FLOOD):
        records.append(snapshot(f"flood-{n}", mode="POWER", active=False, created=now))
        if n % 4_000 == 3_999:
            records.append(stuck)
    return records


def _sample_healthz(daemon: Daemon, stop: threading.Event, answers: list[int | str]) -> None:
    """GET /healthz every 0.5 s, each allowed 1 s: its status, or why it had none."""
    while not stop.is_set():
        try:
            url = f"http://127.0.0.1:{daemon.port}/healthz"
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                answers.append(answer.status)
        except urllib.error.HTTPError as err:
            answers.append(err.code)
        except OSError as exc:
            answers.append(repr(exc))
        stop.wait(0.5)


def test_a_flood_of_ids_is_shed_within_the_budget_and_a_restart_restores_within_it(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """3x the budget in unique ids: tracked within it, shed counted, a stall fires; a restart."""
    first = Daemon(broker, topic, _settings()).start(tmp_path / "first.log")
    now = time.time()
    stuck = snapshot("stuck", created=now, previewing=now)
    produce(broker, topic, _flood(now, stuck))
    records = alerts_until(broker, first.alerts_topic, wanted=1, timeout=60)
    tracked = first.metric("dialer_tracked_interactions")
    budget = first.metric("dialer_tracking_budget_interactions")
    shed = first.metric("dialer_interactions_shed_total", SHED)
    assert first.stop() == 0

    (fired,) = alerts(records)
    assert (fired["interactionId"], fired["status"]) == ("stuck", "firing")
    assert fired["stalledForSeconds"] < THRESHOLD + 10  # on time, not held back by the flood
    assert budget == BUDGET
    assert tracked is not None
    assert shed is not None
    assert BUDGET * 0.99 <= tracked <= BUDGET  # a hundredth more room is made at once
    assert tracked + shed == FLOOD + 1  # nothing ended: every one not tracked was shed

    again = Daemon(broker, topic, _settings(), group=first.group).start(tmp_path / "again.log")
    answers: list[int | str] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_healthz, args=(again, stop, answers))
    sampler.start()
    try:
        again.wait_http("/readyz", lambda status: status == 200, timeout=60)
    finally:
        stop.set()
        sampler.join()
    restored = again.metric("dialer_tracked_interactions")
    _, body = again.get("/stalled")
    assert again.stop() == 0

    assert answers
    assert set(answers) == {200}
    assert restored == tracked  # what was saved: the newest the budget held
    assert b'"stuck"' in body  # its fired stall came back with it
