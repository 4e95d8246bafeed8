"""The API's lists on the real broker: the API double -> ``poll`` -> the topic -> the daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consumer.engine.model import iso
from consumer.testing.apidouble import ApiDouble, Dialer, campaign_entity
from tests.integration.harness import Broker, Daemon, Got, alerts, read_topic, wait_for
from tests.integration.test_poll import CLIENT_ID, SECRET, poller_env, start, until
from tests.machine import free_port

CAMPAIGN = "campaign-callbacks"
THRESHOLDS = {"created": 8, "previewing": 6}


@contextmanager
def serving(dialer: Dialer) -> Iterator[tuple[str, Callable[[Callable[[], None]], None]]]:
    """The API double in this process, on a thread of its own, and its base URL.

    With it comes a way to change the dialer on that thread, where the double reads it.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    double = ApiDouble(dialer, client_id=CLIENT_ID, client_secret=SECRET)
    asyncio.run_coroutine_threadsafe(double.start("127.0.0.1", 0), loop).result(10)

    def change(what: Callable[[], None]) -> None:
        async def apply() -> None:
            what()

        asyncio.run_coroutine_threadsafe(apply(), loop).result(10)

    try:
        yield f"http://127.0.0.1:{double.port}", change
    finally:
        asyncio.run_coroutine_threadsafe(double.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def interaction(iid: str, created: float, **fields: Any) -> bytes:
    """A preview campaign's interaction as the API lists it (no campaign: the poller adds it)."""
    body = {"id": iid, "dialingMode": "preview", "creationTime": iso(created), **fields}
    return json.dumps(body).encode()


def test_scheduled_callbacks_raise_nothing_and_a_popped_one_fires_previewing_on_time(
    broker: Broker, topic: str, tmp_path: Path
) -> None:
    """Scheduled and pending interactions page nobody; one popped and never placed fires on time."""
    dialer = Dialer()
    dialer.add_campaign(campaign_entity(CAMPAIGN, "Callbacks", "preview", "on"))
    created = time.time()
    for n in range(4):
        dialer.put(CAMPAIGN, interaction(f"callback-{n}", created), "scheduled")
    dialer.put(CAMPAIGN, interaction("waiting", created), "pending")

    rules = "{ " + ", ".join(f"{rule} = {s}" for rule, s in THRESHOLDS.items()) + " }"
    daemon = Daemon(broker, topic, {"STALLS_THRESHOLDS": rules}).start(tmp_path / "daemon.log")
    log = tmp_path / "poll.log"
    with serving(dialer) as (base, change):
        args = ["poll", "--api-base", base, "--interval", "1", "--topic", topic]
        poller = start([*args, "--http-port", str(free_port())], log, poller_env(broker))
        try:
            until(
                lambda: (
                    daemon.metric("dialer_pending_interactions", {"campaign": CAMPAIGN}) == 1
                    and daemon.metric("dialer_interactions", {"stage": "created"}) == 5
                ),
                60,
                "the five interactions in the daemon, one of them pending",
                log,
            )
            # well past the created threshold of every one of them
            time.sleep(max(0.0, created + THRESHOLDS["created"] + 4 - time.time()))
            assert alerts(read_topic(broker, daemon.alerts_topic, idle=1.0)) == []

            popped = time.time()
            popped_up = interaction(
                "callback-0",
                created,
                previewPopDeliveredTime=iso(popped),
                activePreviewCall=True,
            )
            change(lambda: dialer.put(CAMPAIGN, popped_up, "previewing"))

            def fired(got: list[Got]) -> bool:
                return any(a["status"] == "firing" for a in alerts(got))

            got = wait_for(lambda: read_topic(broker, daemon.alerts_topic, idle=1.0), fired, 60)
        finally:
            poller.send_signal(signal.SIGTERM)
            assert poller.wait(timeout=60) == 0
    assert daemon.stop() == 0
    (alert,) = alerts(got)
    assert (alert["interactionId"], alert["rule"], alert["status"]) == (
        "callback-0",
        "previewing",
        "firing",
    )
    assert alert["stageEnteredAt"] == iso(popped)
    # on time: not before its threshold from the pop, and within a poll round and a
    # heartbeat of it (the daemon's clock moves on the poller's heartbeats)
    late = alert["stalledForSeconds"] - THRESHOLDS["previewing"]
    assert 0 <= late < 5, alert
