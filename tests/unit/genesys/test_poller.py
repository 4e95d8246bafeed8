"""The poller against the double: rounds, heartbeats, budget, stopping, readiness, secrets."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from prometheus_client import generate_latest

from consumer.errors import LoginRefusedError
from consumer.formats import heartbeat
from consumer.genesys.reply import MAX_PAUSE
from consumer.observe.logs import JsonFormatter
from consumer.testing.apidouble import campaign_entity
from consumer.testing.logs import capture_logs, events_named
from tests.unit.platform_rig import (
    SECRET,
    START,
    Platform,
    SimPacer,
    interaction,
    run,
)


def test_heartbeat_on_every_partition_after_a_successful_round() -> None:
    """After a round, one heartbeat per partition, up to when the oldest poll began."""

    async def scenario(p: Platform) -> None:
        await p.poller.round()

    p = run(scenario, [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(2)])
    beats = p.publisher.heartbeats()
    assert sorted(b.partition for b in beats if b.partition is not None) == [0, 1, 2]
    assert len(beats) == 3
    decoded = {heartbeat.decode(b.value) for b in beats}
    (beat,) = decoded
    assert beat is not None
    assert beat.source == "genesys-poller"
    assert beat.up_to_epoch == pytest.approx(START, abs=0.001)
    assert beat.interval_seconds == 10
    assert p.metric("genesys_poller_heartbeats_total") == 3


def test_no_heartbeat_when_every_poll_failed_and_readiness_says_so() -> None:
    """A round whose every poll failed (503s) sends no heartbeat and makes the poller unready."""
    ready: list[list[str]] = []

    async def scenario(p: Platform) -> None:
        await p.poller.round()
        p.publisher.clear()
        p.double.faults.unavailable = 6  # both campaigns' three tries
        assert not await p.poller.round()
        ready.append(p.poller.readiness())
        await p.poller.round()
        ready.append(p.poller.readiness())

    p = run(scenario, [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(2)])
    assert ready[0] == ["the last poll of every campaign failed"]
    assert ready[1] == []
    assert len(p.publisher.heartbeats()) == 3  # from the third round only
    assert p.metric("genesys_poller_polls_total", result="failed") == 2


def test_partial_failure_still_beats() -> None:
    """One campaign failing while another answers: the round still sends heartbeats."""

    async def scenario(p: Platform) -> None:
        await p.poller.round()
        p.publisher.clear()
        p.double.faults.unavailable = 3  # the first campaign's three tries
        assert await p.poller.round()

    p = run(scenario, [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(2)])
    assert len(p.publisher.heartbeats()) == 3


def test_refused_login_stops_the_poller_without_a_heartbeat() -> None:
    """A login refused mid-run ends run() with LoginRefusedError; no heartbeat that round."""

    async def scenario(p: Platform) -> None:
        await p.poller.round()
        p.publisher.clear()
        p.double.expire_tokens()
        p.double.faults.refuse_login = True
        with pytest.raises(LoginRefusedError):
            await p.poller.run()

    p = run(scenario)
    assert p.publisher.heartbeats() == []
    assert p.poller.readiness() == ["no access token"]


def test_budget_holds_over_simulated_minutes() -> None:
    """30 campaigns every second want 1800 requests a minute: no 60 s window sees over 240."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(30)]

    async def scenario(p: Platform) -> None:
        while p.pacer.now < START + 150:
            await p.poller.round()

    p = run(scenario, entities, interval_seconds=1, requests_per_minute=240)
    times = p.api_requests()
    busiest = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    assert busiest <= 240
    assert busiest >= 230  # and it does use the budget
    assert len(times) >= 500


def test_spread_over_the_interval() -> None:
    """Four campaigns every 10 s: polls 2.5 s apart, the next round 10 s after the first."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(4)]

    async def scenario(p: Platform) -> None:
        await p.poller.run(rounds=2)

    p = run(scenario, entities)
    times = [t - START for t in p.api_requests("/interactions")]
    assert times == pytest.approx([0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5])


def test_stop_finishes_the_round_in_hand() -> None:
    """stop() mid-round: the remaining polls run at once, a heartbeat follows, run() returns."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(4)]

    async def scenario(p: Platform) -> None:
        original = p.client.interactions

        async def stop_on_second(campaign_id: str) -> bytes:
            if campaign_id == "c-1":
                p.poller.stop()
            return await original(campaign_id)

        p.client.interactions = stop_on_second  # type: ignore[method-assign]
        await p.poller.run()

    p = run(scenario, entities)
    times = [t - START for t in p.api_requests("/interactions")]
    assert times == pytest.approx([0, 2.5, 2.5, 2.5])
    assert len(p.publisher.heartbeats()) == 3
    assert p.poller.rounds == 1


def test_stop_during_an_outage_does_not_retry() -> None:
    """Stopping while the API answers 503: each remaining poll is tried once, no back-off."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in range(3)]

    async def scenario(p: Platform) -> None:
        await p.poller.round()
        p.double.faults.unavailable = 100
        p.poller.stop()  # as SIGTERM does, with this round still to finish
        assert not await p.poller.round()

    p = run(scenario, entities)
    statuses = [s.status for s in p.double.served if "/interactions" in s.path]
    assert statuses == [200, 200, 200, 503, 503, 503]
    assert p.metric("genesys_poller_backoffs_total", cause="unavailable") == 3


def test_secret_absent_from_logs_metrics_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Through renewals, 401s, 429s, 503s and a refused login, no line shows the secret."""

    async def scenario(p: Platform) -> None:
        p.double.faults.token_seconds = 5
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "pending")
        await p.poller.round()
        p.double.faults.rate_limited, p.double.faults.unavailable = 2, 2
        await p.poller.round()
        p.double.expire_tokens()
        await p.poller.round()
        p.double.faults.refuse_login = True
        p.double.expire_tokens()
        with pytest.raises(LoginRefusedError):
            await p.poller.round()

    with caplog.at_level(logging.DEBUG):
        p = run(scenario)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert any("token_obtained" in line for line in lines)
    assert any("platform_backoff" in line for line in lines)
    text = "\n".join(lines) + generate_latest(p.registry).decode() + repr(p.settings)
    assert SECRET not in text
    assert p.settings.genesys.client_secret is not None
    stream = io.StringIO()
    print(p.settings, p.settings.genesys.client_secret, file=stream)
    assert SECRET not in stream.getvalue()


class FrozenPacer(SimPacer):
    """Time stands still and a wait never ends by itself (only stop() may end it)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def test_retry_after_inf_is_clamped_and_stop_wakes_the_pause() -> None:
    """A 429 asking for an infinite pause pauses at most MAX_PAUSE; stop() ends it at once."""
    paused: list[float] = []

    async def scenario(p: Platform) -> None:
        frozen = FrozenPacer()
        p.client.pacer = frozen
        p.poller.pacer = frozen
        p.double.faults.rate_limited, p.double.faults.retry_after = 1, "inf"
        task = asyncio.create_task(p.poller.run())
        while not any(s.status == 429 for s in p.double.served):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the poller is in its pause now
        paused.append(p.client.paused_for)
        p.poller.stop()
        await asyncio.wait_for(task, 5)  # a pause stop() did not wake would never end

    run(scenario)
    assert 0 < paused[0] <= MAX_PAUSE


def test_a_campaign_failing_every_round_holds_up_to_back() -> None:
    """c-2 answers 403 every round: heartbeats vouch no further than its start; it is named."""
    entities = [campaign_entity(f"c-{n}", "C", "preview", "on") for n in (1, 2)]
    ready: list[list[str]] = []

    async def scenario(p: Platform) -> None:
        p.double.faults.forbidden = ["c-2"]
        await p.poller.run(rounds=5)
        ready.append(p.poller.readiness())

    p = run(scenario, entities)
    beats = [heartbeat.decode(b.value) for b in p.publisher.heartbeats()]
    assert len(beats) == 15  # every round: c-1 is polled
    assert {b.up_to_epoch for b in beats if b is not None} == {START}
    assert p.metric("genesys_poller_campaign_failing", campaign_id="c-2", reason="refused") == 5
    assert any(
        line.startswith("campaign c-2: 5 polls failed in a row (refused:") for line in ready[0]
    )


def test_no_successful_poll_for_a_few_intervals_makes_the_poller_unready() -> None:
    """Every poll failing for more than three intervals: readiness says so."""
    ready: list[list[str]] = []

    async def scenario(p: Platform) -> None:
        await p.poller.run(rounds=1)
        p.double.faults.forbidden = ["c-1"]
        await p.poller.run(rounds=3)
        ready.append(p.poller.readiness())
        await p.poller.run(rounds=5)
        ready.append(p.poller.readiness())

    run(scenario)
    assert not any(line.startswith("no campaign polled") for line in ready[0])
    assert "no campaign polled successfully in 30 s" in ready[1]


def test_300_campaigns_on_the_default_budget_say_the_interval_they_achieve() -> None:
    """240 requests a minute cannot poll 300 campaigns in 10 s: warned, shown, beaten honestly."""
    entities = [campaign_entity(f"c-{n:03}", "C", "preview", "on") for n in range(300)]

    async def scenario(p: Platform) -> None:
        await p.poller.run(rounds=2)

    with capture_logs(logging.WARNING) as events:
        p = run(scenario, entities)
    beats = [heartbeat.decode(b.value) for b in p.publisher.heartbeats()]
    intervals = {b.interval_seconds or 0.0 for b in beats if b is not None}
    # what the budget allows (300 polls at 240 a minute: 75 s) or more, not the 10 s asked
    assert min(intervals) >= 75
    round_seconds = p.metric("genesys_poller_round_seconds")
    assert round_seconds > 60
    assert beats[-1] is not None
    assert beats[-1].interval_seconds == max(75, round_seconds)
    assert p.metric("genesys_poller_budget_short") == 1
    assert len(events_named(events, "budget_short")) == 1
