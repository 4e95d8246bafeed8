"""Issue 34 on the real broker: the project's ``poll`` against the API double, a daemon behind.

No stall is judged on time the poller has not vouched for: a preview placed just before its
threshold, which the next poll publishes, never fires; one never placed fires within one
poll interval of its threshold.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from consumer.engine.model import WIRE_TIMES, iso
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity
from tests.integration.harness import Broker, Daemon, alerts, read_topic
from tests.integration.test_poll import CLIENT_ID, SECRET, http, poller_env, start, until
from tests.machine import free_port

INTERVAL = 5
THRESHOLD = 12


@contextmanager
def api_double(dialer: Dialer) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """The API double in this process, on a loop of its own; its base URL and that loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    double = ApiDouble(dialer, client_id=CLIENT_ID, client_secret=SECRET)
    asyncio.run_coroutine_threadsafe(double.start("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{double.port}", loop
    finally:
        asyncio.run_coroutine_threadsafe(double.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def interaction(iid: str, popped: float, placed: float | None = None) -> bytes:
    """A preview interaction as the Platform API shows it: popped, and maybe placed."""
    body = {
        "id": iid,
        "campaign": {"id": "c-1"},
        "dialingMode": "preview",
        "activePreviewCall": True,
        WIRE_TIMES["previewing"]: iso(popped),
    }
    if placed is not None:
        body[WIRE_TIMES["placed"]] = iso(placed)
    return json.dumps(body).encode()


def test_previews_placed_before_their_threshold_never_fire(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Issue 34: 0 of 8 previews placed 2 s before their threshold fire; the ninth fires."""
    settings = {"STALLS_THRESHOLDS": f"{{ previewing = {THRESHOLD}, placed = 600 }}"}
    daemon = Daemon(broker, topic, settings).start(tmp_path / "daemon.log")
    daemon.wait_http("/readyz", lambda status: status == 200, timeout=60)
    dialer = Dialer()
    dialer.add_campaign(campaign_entity("c-1", "Spring", "preview", "on"))
    port = free_port()
    log = tmp_path / "poll.log"
    with api_double(dialer) as (base, loop):
        args = ["poll", "--api-base", base, "--interval", str(INTERVAL), "--topic", topic]
        poller = start([*args, "--http-port", str(port)], log, poller_env(broker))
        try:
            until(lambda: b'"ready":true' in http(f"http://127.0.0.1:{port}/readyz"), 60, "up", log)
            beats = "dialer_heartbeats_total"
            until(lambda: (daemon.metric(beats) or 0) > 0, 60, "heartbeats read", log)
            t0 = time.time()
            script: list[tuple[float, str, float | None]] = []  # (when, id, placed)
            for n in range(8):
                script += [(t0 + 2 * n, f"placed-{n}", None), (t0 + 2 * n + 10, f"placed-{n}", 0)]
            script.append((t0 + 16, "never-placed", None))
            popped: dict[str, float] = {}
            for when, iid, placed in sorted(script):
                time.sleep(max(0.0, when - time.time()))
                popped.setdefault(iid, when)
                shown = interaction(iid, popped[iid], None if placed is None else when)
                bucket = "previewing" if placed is None else "proceeding"
                loop.call_soon_threadsafe(dialer.put, "c-1", shown, bucket)
            due = popped["never-placed"] + THRESHOLD
            seen, got = None, []
            while time.time() < due + INTERVAL + 10:
                got = alerts(read_topic(broker, daemon.alerts_topic, idle=0.2))
                if seen is None and any(a.get("interactionId") == "never-placed" for a in got):
                    seen = time.time()
                time.sleep(0.2)
        finally:
            poller.send_signal(signal.SIGTERM)
            poller.wait(timeout=60)
    delay = daemon.metric("dialer_stall_alert_delay_seconds_sum")
    assert daemon.stop() == 0
    fired = [a["interactionId"] for a in got if a["status"] == "firing"]
    print(f"\npoll every {INTERVAL} s: fired {fired}, seen {seen and seen - due:.2f} s after due")
    print(f"dialer_stall_alert_delay_seconds_sum {delay}")
    assert fired == ["never-placed"]
    assert seen is not None
    assert seen - due <= INTERVAL + 2 + 1  # one poll interval + 2 s, and a second to read it
