"""What a poll publishes: the API's own bytes, changes only, tombstones after two misses."""

from __future__ import annotations

from collections import Counter

from consumer.engine.model import iso
from consumer.formats import campaigns, heartbeat
from consumer.genesys.answer import with_campaign
from tests.unit.platform_rig import (
    START,
    TOPIC,
    Platform,
    interaction,
    run,
    tombstoned,
)


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
