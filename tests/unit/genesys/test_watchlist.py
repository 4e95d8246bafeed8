"""Which campaigns the poller watches, and how it proves one over (listed ended, 404 twice)."""

from __future__ import annotations

import logging

from consumer.formats import campaigns
from consumer.testing.apidouble import campaign_entity
from consumer.testing.logs import capture_logs, events_named
from tests.unit.platform_rig import (
    CAMPAIGNS_TOPIC,
    TOPIC,
    Platform,
    interaction,
    run,
    tombstoned,
)


def test_deleted_campaign_dropped_with_one_warning() -> None:
    """A campaign answering 404 twice in a row is warned about once, tombstoned, not polled."""

    async def scenario(p: Platform) -> None:
        p.dialer.put("c-1", interaction("i-1", campaign={"id": "c-1"}), "previewing")
        await p.poller.round()
        p.dialer.delete_campaign("c-1")
        for _ in range(3):
            await p.poller.round()

    with capture_logs(logging.WARNING) as events:
        p = run(scenario, [campaign_entity(f"c-{n}", "C", "preview", "on") for n in (1, 2)])
    assert len(events_named(events, "campaign_not_found")) == 1
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
