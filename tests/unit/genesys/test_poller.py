"""The poller against the double: what it publishes, when, and what it survives."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client import generate_latest

from consumer.engine.model import iso
from consumer.errors import BrokerError, LoginRefusedError
from consumer.formats import campaigns, heartbeat
from consumer.genesys.answer import with_campaign
from consumer.genesys.reply import MAX_PAUSE
from consumer.observe.logs import JsonFormatter
from consumer.testing.apidouble import campaign_entity
from tests.unit.platform_rig import (
    SECRET,
    START,
    TOPIC,
    Platform,
    SimPacer,
    interaction,
    platform,
)

CAMPAIGNS_TOPIC = campaigns.topic_for(TOPIC)


def test_interactions_published_as_the_api_wrote_them_with_headers() -> None:
    """Each interaction is its own bytes keyed by id, bucket, poll time and source in headers."""
    odd = (
        b'{ "id":"i-1", "campaign": {"id":"c-1"},  "creationTime":"2026-11-25T10:00:00+00:00",'
        b'\n "x":1.50}'
    )

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", odd, "previewing")
        p.dialer.put("c-1", interaction("i-2", campaign={"id": "c-1"}), "scheduled")
        await p.poller.round()

    p = run(scenario)
    by_key = {r.key: r for r in p.publisher.on(TOPIC)}
    assert by_key[b"i-1"].value == odd
    assert by_key[b"i-1"].headers["genesys.bucket"] == b"previewing"
    assert by_key[b"i-2"].headers["genesys.bucket"] == b"scheduled"
    polled_at = by_key[b"i-1"].headers["genesys.polled.at"].decode()
    assert polled_at.endswith("Z")
    assert polled_at >= iso(START)
    source = p.poller.settings.source_id.encode()
    assert by_key[b"i-1"].headers[heartbeat.SOURCE_HEADER] == source


def test_campaign_added_from_the_answer_when_the_interaction_lacks_it() -> None:
    """An interaction without campaign (or with null) gets the answer's campaign, bytes kept."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", b'{"id":"i-1","creationTime":"2026-11-25T10:00:00Z"}', "pending")
        p.dialer.put("c-1", b'{"id":"i-2","campaign":null}', "pending")
        await p.poller.round()

    p = run(scenario)
    by_key = {r.key: r.value for r in p.publisher.on(TOPIC)}
    campaign = b'{"id":"c-1","name":"Renewals","selfUri":"/api/v2/outbound/campaigns/c-1"}'
    assert by_key[b"i-1"] == (
        b'{"id":"i-1","creationTime":"2026-11-25T10:00:00Z","campaign":' + campaign + b"}"
    )
    assert by_key[b"i-2"] == b'{"id":"i-2","campaign":null,"campaign":' + campaign + b"}"
    assert with_campaign(b"{ }", b"{}") == b'{"campaign":{}}'


def test_only_changes_are_published() -> None:
    """A second poll showing the same objects publishes nothing; a changed one goes again."""
    counts: list[int] = []

    async def scenario(p: Platform) -> None:
        for n in range(3):
            p.dialer.put("c-1", interaction(f"i-{n}", campaign={"id": "c-1"}), "previewing")
        await p.poller.round()
        counts.append(len(p.publisher.on(TOPIC)))
        await p.poller.round()
        counts.append(len(p.publisher.on(TOPIC)))
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}, x=1), "proceeding")
        await p.poller.round()
        counts.append(len(p.publisher.on(TOPIC)))

    p = run(scenario)
    assert counts == [3, 3, 4]
    last = p.publisher.on(TOPIC)[-1]
    assert (last.key, last.headers["genesys.bucket"]) == (b"i-1", b"proceeding")
    assert p.metric("genesys_poller_records_published_total", kind="snapshot") == 4


def test_a_move_to_another_list_is_published_though_the_bytes_are_the_same() -> None:
    """A callback moved from scheduled to pending, same bytes: published again, new list."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("cb", campaign={"id": "c-1"}), "scheduled")
        await p.poller.round()
        await p.poller.round()
        p.dialer.put("c-1", interaction("cb", campaign={"id": "c-1"}), "pending")
        await p.poller.round()
        await p.poller.round()

    p = run(scenario)
    sent = [(r.key, r.headers["genesys.bucket"]) for r in p.publisher.on(TOPIC)]
    assert sent == [(b"cb", b"scheduled"), (b"cb", b"pending")]


def test_tombstone_after_two_consecutive_misses_only() -> None:
    """Absent once, back: no tombstone; absent from two polls in a row: one, naming its source."""
    tombstones: list[list[bytes | None]] = []

    def dead(p: Platform) -> list[bytes | None]:
        return [r.key for r in p.publisher.on(TOPIC) if r.value is None]

    async def scenario(p: Platform) -> None:
        flaky = interaction("flaky", campaign={"id": "c-1"})
        p.dialer.put("c-1", flaky, "interacting")
        p.dialer.put("c-1", interaction("gone", campaign={"id": "c-1"}), "interacting")
        await p.poller.round()
        p.dialer.end("flaky")
        p.dialer.end("gone")
        await p.poller.round()
        tombstones.append(dead(p))
        p.dialer.put("c-1", flaky, "interacting")
        await p.poller.round()
        tombstones.append(dead(p))
        await p.poller.round()
        tombstones.append(dead(p))

    p = run(scenario)
    assert tombstones == [[], [b"gone"], [b"gone"]]
    assert p.metric("genesys_poller_records_published_total", kind="tombstone") == 1
    (tombstone,) = (r for r in p.publisher.on(TOPIC) if r.value is None)
    assert tombstone.headers[heartbeat.SOURCE_HEADER] == p.poller.settings.source_id.encode()


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


def test_deleted_campaign_dropped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A campaign answering 404 twice in a row is warned about once, tombstoned, not polled."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "previewing")
        await p.poller.round()
        p.dialer.delete_campaign("c-1")
        for _ in range(3):
            await p.poller.round()

    with caplog.at_level(logging.WARNING, "consumer.genesys.poller"):
        p = run(scenario, [campaign_entity(f"c-{n}", "C", "preview", "on") for n in (1, 2)])
    warnings = [r for r in caplog.records if r.getMessage() == "campaign_not_found"]
    assert len(warnings) == 1
    assert len(p.api_requests("/c-1/interactions")) == 3
    assert len(p.api_requests("/c-2/interactions")) == 4
    topic = [(r.key, r.value) for r in p.publisher.on(TOPIC)]
    assert (b"i-1", None) in topic
    assert (b"c-1", None) in [(r.key, r.value) for r in p.publisher.on(CAMPAIGNS_TOPIC)]


def test_discovery_polls_live_preview_campaigns_and_publishes_their_settings() -> None:
    """Only live preview campaigns are polled; their settings go to <topic>.campaigns."""
    entities = [
        campaign_entity("on", "A", "preview", "on", preview_timeout=45),
        campaign_entity("stopping", "B", "preview", "stopping"),
        campaign_entity("forced", "E", "preview", "forced_stopping"),
        campaign_entity("off", "C", "preview", "off"),
        campaign_entity("power", "D", "power", "on"),
    ]

    async def scenario(p: Platform) -> None:
        await p.poller.round()
        await p.poller.round()

    p = run(scenario, entities)
    assert sorted(p.poller.watched) == ["forced", "on", "stopping"]
    polled = {s.path.split("/")[-2] for s in p.double.served if "/interactions" in s.path}
    assert polled == {"forced", "on", "stopping"}
    records = {r.key: campaigns.decode(r.value) for r in p.publisher.on(CAMPAIGNS_TOPIC)}
    assert records[b"on"] == campaigns.Campaign("on", "A", "preview", "on", 45, False)
    assert set(records) == {b"forced", b"on", b"stopping"}  # once each: unchanged since


def test_named_campaigns_are_polled_whatever_their_mode() -> None:
    """With genesys.campaigns set, exactly those are polled and their settings read."""
    entities = [
        campaign_entity("p", "P", "power", "on"),
        campaign_entity("q", "Q", "preview", "on"),
    ]

    async def scenario(p: Platform) -> None:
        await p.poller.round()

    p = run(scenario, entities, campaigns=["p"])
    assert list(p.poller.watched) == ["p"]
    assert [r.key for r in p.publisher.on(CAMPAIGNS_TOPIC)] == [b"p"]


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


def test_refused_writes_republish_next_round() -> None:
    """Records the broker refused are not remembered as published: the next round sends them."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "pending")
        p.publisher.refuse = True
        await p.poller.round()
        p.publisher.refuse = False
        await p.poller.round()

    p = run(scenario)
    assert [r.key for r in p.publisher.on(TOPIC)] == [b"i-1"]


def test_invalid_interactions_are_counted_and_skipped() -> None:
    """Non-objects, no id, or over kafka.max_record_bytes: skipped and counted; rest published."""

    async def scenario(p: Platform) -> None:
        p.dialer.interactions["c-1"]["x"] = ("pending", b"42")
        p.dialer.interactions["c-1"]["y"] = ("pending", b'{"name":"no id"}')
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "pending")
        big = interaction("big", campaign={"id": "c-1"}, padding="x" * 2_000_000)
        p.dialer.put("c-1", big, "pending")
        await p.poller.round()

    p = run(scenario)
    assert [r.key for r in p.publisher.on(TOPIC)] == [b"i-1"]
    assert p.metric("genesys_poller_invalid_interactions_total") == 3


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


def test_interaction_gauge_counts_the_latest_poll_per_bucket() -> None:
    """genesys_poller_interactions shows the latest poll's interactions per list."""

    async def scenario(p: Platform) -> None:
        buckets = ["pending", "previewing", "previewing", "interacting"]
        for n, bucket in enumerate(buckets):
            p.dialer.put("c-1", interaction(f"i-{n}", campaign={"id": "c-1"}), bucket)
        await p.poller.round()

    p = run(scenario)
    seen = Counter(
        {b: p.metric("genesys_poller_interactions", bucket=b) for b in campaigns.BUCKETS}
    )
    assert seen == Counter({"previewing": 2, "pending": 1, "interacting": 1})


def run(
    scenario: object, entities: list[dict[str, object]] | None = None, **genesys: object
) -> Platform:
    """Run ``scenario(platform)`` on a fresh double and poller; returns the platform."""

    async def main() -> Platform:
        async with platform(entities or (), **genesys) as p:
            await scenario(p)  # type: ignore[operator]
            return p

    return asyncio.run(main())


def tombstoned(p: Platform) -> list[bytes | None]:
    """The keys of the tombstones published on the interactions topic."""
    return [r.key for r in p.publisher.on(TOPIC) if r.value is None]


def test_answers_without_the_lists_prove_nothing_absent() -> None:
    """Two 200 ``{}`` answers in a row: no tombstone, two incomplete polls counted."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "previewing")
        await p.poller.round()
        p.double.faults.empty_answers = 2
        await p.poller.round()
        await p.poller.round()
        await p.poller.round()  # a listing again, and i-1 is in it

    p = run(scenario)
    assert tombstoned(p) == []
    assert p.metric("genesys_poller_polls_total", result="incomplete") == 2


def test_answers_that_do_not_decode_prove_nothing_absent() -> None:
    """Two 200 answers that are not JSON in a row: no tombstone, two incomplete polls."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "previewing")
        await p.poller.round()
        original = p.client.interactions
        garbled = iter([b"<html>gateway</html>", b'{"pendingInteractions": [{"id": '])

        async def answer(campaign_id: str) -> bytes:
            body = next(garbled, None)
            return body if body is not None else await original(campaign_id)

        p.client.interactions = answer  # type: ignore[method-assign]
        for _ in range(3):
            await p.poller.round()

    p = run(scenario)
    assert tombstoned(p) == []
    assert p.metric("genesys_poller_polls_total", result="incomplete") == 2


def test_forced_stopping_campaign_stays_watched_until_it_is_off() -> None:
    """forced_stopping keeps a campaign watched; listed off, its interactions are tombstoned."""
    dropped: list[list[bytes | None]] = []

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "interacting")
        await p.poller.round()
        p.dialer.set_status("c-1", "forced_stopping")
        for _ in range(3):
            p.pacer.now += 2  # past discovery_seconds: the list is read every round
            await p.poller.round()
        dropped.append(tombstoned(p))
        p.dialer.set_status("c-1", "forced_off")
        p.pacer.now += 2
        await p.poller.round()
        dropped.append(tombstoned(p))

    p = run(scenario, discovery_seconds=1)
    assert dropped == [[], [b"i-1"]]
    assert "c-1" not in p.poller.watched


def test_short_campaign_listing_is_a_failed_read_not_a_shorter_list() -> None:
    """Empty pages before pageCount, or no pageCount: the campaigns beyond stay watched."""
    entities = [campaign_entity(f"c-{n:03}", "C", "preview", "on") for n in range(150)]
    watched: list[int] = []

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-149", interaction("i-1", campaign={"id": "c-149"}), "previewing")
        await p.poller.round()
        watched.append(len(p.poller.watched))
        for fault in ("short_listing", "no_page_count"):
            setattr(p.double.faults, fault, True)
            for _ in range(2):
                p.pacer.now += 2
                await p.poller.round()
            watched.append(len(p.poller.watched))
            setattr(p.double.faults, fault, False)

    p = run(scenario, entities, discovery_seconds=1, interval_seconds=1)
    assert watched == [150, 150, 150]
    assert tombstoned(p) == []


def test_restarted_poller_tombstones_what_ended_while_it_was_down() -> None:
    """A new process rebuilds what was published from the topic; what ended meanwhile goes."""
    ready: list[list[str]] = []

    async def scenario(p: Platform) -> None:
        for iid in ("ended", "stays"):
            p.dialer.put("c-1", interaction(iid, campaign={"id": "c-1"}), "previewing")
        await p.poller.run(rounds=1)
        p.dialer.end("ended")  # while no poller runs
        published = len(p.publisher.on(TOPIC))
        poller = p.restart()
        ready.append(poller.readiness())
        await poller.run(rounds=2)
        ready.append(poller.readiness())
        assert len(p.publisher.on(TOPIC)) == published + 1  # "stays" is not sent again

    p = run(scenario)
    assert ready[0] == ["rebuilding what was published from interactions"]
    assert ready[1] == []
    assert tombstoned(p) == [b"ended"]


def test_restart_tombstones_the_interactions_of_a_campaign_that_stopped_meanwhile() -> None:
    """Published before a restart, its campaign listed off after: tombstoned at discovery."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "interacting")
        await p.poller.run(rounds=1)
        p.dialer.set_status("c-1", "off")
        await p.restart().run(rounds=1)

    p = run(scenario)
    assert tombstoned(p) == [b"i-1"]


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


def test_300_campaigns_on_the_default_budget_say_the_interval_they_achieve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """240 requests a minute cannot poll 300 campaigns in 10 s: warned, shown, beaten honestly."""
    entities = [campaign_entity(f"c-{n:03}", "C", "preview", "on") for n in range(300)]

    async def scenario(p: Platform) -> None:
        await p.poller.run(rounds=2)

    with caplog.at_level(logging.WARNING, "consumer.genesys.poller"):
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
    assert [r.getMessage() for r in caplog.records].count("budget_short") == 1


def test_rebuild_is_retried_and_nothing_is_published_before_it_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The topic unreadable at start: retried, unready meanwhile, no record sent before."""
    sent_while_failing: list[int] = []

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "pending")
        poller = p.restart()
        history = poller.history
        assert history is not None
        original = history.read
        failures = iter([True, True])

        async def flaky(
            partition: int, progress: Callable[[int], None]
        ) -> dict[bytes, bytes | None]:
            if next(failures, False):
                sent_while_failing.append(len(p.publisher.topics))
                assert poller.readiness() == ["rebuilding what was published from interactions"]
                raise BrokerError("reading interactions[0]: unreachable")
            return await original(partition, progress)

        history.read = flaky  # type: ignore[method-assign]
        await poller.run(rounds=1)

    with caplog.at_level(logging.WARNING, "consumer.genesys.poller"):
        p = run(scenario)
    assert sent_while_failing == [0, 0]
    assert [r.getMessage() for r in caplog.records].count("rebuild_failed") == 2
    assert [r.key for r in p.publisher.on(TOPIC)] == [b"i-1"]
