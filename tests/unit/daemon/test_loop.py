"""The daemon loop on fakes: each test names the delivery or time guarantee it checks."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from consumer import engine
from consumer.daemon import memory
from consumer.daemon.records import StateRecord
from consumer.engine.limits import Limits
from consumer.engine.observations import Observations
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.formats import campaigns, changelog
from consumer.formats.alerts import Alert
from consumer.settings.schema import AlertmanagerSettings
from consumer.sinks.alertmanager import AlertmanagerSink, to_alertmanager
from consumer.testing.fakes import FakeFollower, FakeRecord
from consumer.testing.logs import capture_logs, events_named
from consumer.testing.rig import (
    ALERTS,
    DEAD,
    STATE,
    T0,
    TOPIC,
    Rig,
    beat,
    drain,
    preview,
    settings,
    until,
)
from tests.unit import factory
from tests.unit.am_double import FakeAlertmanager, alertmanager
from tests.unit.formats.test_changelog import poisoned, too_deep

TP = (TOPIC, 0)
SHED = {"reason": "budget", "stall": "none"}


def test_until_idle_drains_applies_and_commits_everything() -> None:
    """Guarantee: a drained batch is committed to its end once its outputs are acknowledged."""
    rig = Rig()
    rig.send(preview("a", created=0, previewing=1), key="a", at=1)
    rig.send(b"not json", key="junk", at=2)
    rig.send(preview("a", created=0, previewing=1, placed=3), key="a", at=3)
    asyncio.run(drain(rig.daemon()))
    assert rig.consumer.committed == {TP: 3}
    assert [r.headers[0] for r in rig.producer.topics[DEAD]] == [("dlq.reason", b"not_json")]
    assert rig.alerts() == []
    assert rig.sample("dialer_events_total", {"outcome": "applied"}) == 2


def test_dead_letters_keep_their_partition_order_and_log_one_line_per_reason() -> None:
    """Guarantee: partition p's dead letters land in order on p mod n, logged once per reason."""
    rig = Rig(partitions=4)  # the dead-letter topic has the fake's 3 partitions
    for partition in range(4):
        for n in range(3):
            rig.send(b"{", key=f"p{partition}-{n}", at=n, partition=partition)
        rig.send(b"[]", key=f"p{partition}-list", at=4, partition=partition)
    with capture_logs(logging.WARNING) as logged:
        asyncio.run(drain(rig.daemon()))
    landed: dict[int, list[bytes | None]] = {}
    for record in rig.producer.topics[DEAD]:
        landed.setdefault(record.partition, []).append(record.key)
    in_order = [b"p%d-0", b"p%d-1", b"p%d-2", b"p%d-list"]
    assert landed[0] == [k % 0 for k in in_order] + [k % 3 for k in in_order]
    assert landed[1] == [k % 1 for k in in_order]
    assert landed[2] == [k % 2 for k in in_order]
    assert rig.sample("dialer_dead_letters_total", {"reason": "not_json"}) == 12
    assert rig.sample("dialer_dead_letters_total", {"reason": "not_object"}) == 4
    events = events_named(logged, "dead_letter")
    seen = sorted(
        (e["partition"], e["reason"], e["count"], e["offset"], e["last_offset"]) for e in events
    )
    assert seen == [
        (p, reason, count, first, last)
        for p in range(4)
        for reason, count, first, last in (("not_json", 3, 0, 2), ("not_object", 1, 3, 3))
    ]


def test_offsets_wait_for_the_alert_acknowledgement() -> None:
    """Guarantee: a record's offset is not committed while its alert is unacknowledged."""
    rig = Rig()
    rig.producer.holding.add(ALERTS)
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("other", previewing=20), key="other", at=20)  # stuck came due by then

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run(until_idle=True))
        await until(lambda: rig.producer.held > 0)
        await asyncio.sleep(0.05)  # turns of the loop that must not commit anything
        assert rig.consumer.committed == {}
        rig.producer.release()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert rig.alerts() == [("stuck", "firing", "previewing")]
    assert rig.consumer.committed == {TP: 2}


def test_state_of_an_alerted_interaction_is_saved_after_its_alert() -> None:
    """Guarantee: a saved "fired" never stands for an alert that was not acknowledged."""
    rig = Rig()
    rig.producer.holding.add(ALERTS)
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("quiet", created=15), key="quiet", at=15)

    async def scenario() -> None:
        task = asyncio.create_task(rig.daemon().run(until_idle=True))
        await until(lambda: rig.producer.held > 0)
        await until(lambda: b"quiet" in {r.key for r in rig.producer.topics.get(STATE, [])})
        assert b"stuck" not in {r.key for r in rig.producer.topics[STATE]}
        rig.producer.release()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    saved = {r.key: r.value for r in rig.producer.topics[STATE]}
    restored = changelog.decode(saved[b"stuck"] or b"")
    assert restored is not None
    assert restored[1] is not None


def test_a_refused_output_holds_the_commit_then_recovers() -> None:
    """Guarantee: nothing is committed past a batch whose dead letter is refused; it recovers."""
    rig = Rig()
    rig.producer.refusing.add(DEAD)
    rig.send(b"not json", key="junk", at=0)
    rig.send(preview("a", created=1), key="a", at=1)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run(until_idle=True))
        await until(lambda: rig.sample("dialer_output_errors_total") >= 3)
        assert rig.consumer.committed == {}
        assert daemon.delivery.delivering_since is not None
        rig.producer.refusing.clear()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert len(rig.producer.topics[DEAD]) == 1
    assert rig.consumer.committed == {TP: 2}


def test_stop_while_an_output_refuses_leaves_the_batch_for_the_next_owner() -> None:
    """Guarantee: a batch given up at shutdown is not committed, and lands after a restart."""
    rig = Rig()
    rig.producer.refusing.add(DEAD)
    rig.send(b"not json", key="junk", at=0)

    async def first_life() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.sample("dialer_output_errors_total") >= 1)
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(first_life())
    assert rig.consumer.committed == {}
    rig.producer.refusing.clear()
    asyncio.run(drain(rig.daemon()))
    assert len(rig.producer.topics[DEAD]) == 1
    assert rig.consumer.committed == {TP: 1}


def test_crash_after_the_alert_before_the_commit_repeats_only_the_same_alert() -> None:
    """Guarantee: after a crash a stall may be reported again, but only with the same alertId."""
    rig = Rig()
    rig.consumer.refuse_commits = True  # the process dies before any commit lands
    rig.producer.refusing.add(STATE)  # ...and before its state was saved
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("later", created=30), key="later", at=30)

    async def crash() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: len(rig.alerts()) == 1)
        task.cancel()  # kill -9: nothing more is delivered or committed

    asyncio.run(crash())
    rig.consumer.refuse_commits = False
    rig.producer.refusing.clear()
    asyncio.run(drain(rig.daemon()))
    firings = [json.loads(v or b"") for v in rig.producer.values(ALERTS)]
    assert [a["status"] for a in firings] == ["firing", "firing"]
    assert firings[0]["alertId"] == firings[1]["alertId"]
    assert rig.consumer.committed == {TP: 2}


def test_a_fired_stall_saved_before_a_restart_is_not_fired_again() -> None:
    """Guarantee: a stall whose "fired" was saved stays fired across a restart."""
    rig = Rig()
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("later", created=30), key="later", at=30)
    asyncio.run(drain(rig.daemon()))
    rig.consumer.committed.clear()  # the next owner reads everything again
    asyncio.run(drain(rig.daemon()))
    assert rig.alerts() == [("stuck", "firing", "previewing")]


def test_a_rebalance_mid_delivery_commits_the_batch_before_giving_the_partition_up() -> None:
    """Guarantee: a revocation waits for the batch in delivery, commits it, then lets go."""
    rig = Rig(partitions=2)
    rig.producer.holding.add(ALERTS)
    rig.send(preview("stuck", previewing=0), key="stuck", at=0, partition=1)
    rig.send(preview("later", created=30), key="later", at=30, partition=1)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.producer.held > 0)
        revoking = asyncio.create_task(rig.consumer.rebalance(revoke=[(TOPIC, 1)]))
        await asyncio.sleep(0.05)
        assert not revoking.done()  # waiting for the batch in hand
        assert rig.consumer.committed.get((TOPIC, 1), 0) == 0  # none of it committed
        rig.producer.release()
        await asyncio.wait_for(revoking, 5)
        assert rig.consumer.committed[TOPIC, 1] == 2
        commits = len(rig.consumer.commits)
        rig.send(preview("gone", created=40), key="gone", at=40, partition=1)
        await asyncio.sleep(0.05)
        daemon.stop()
        await asyncio.wait_for(task, 5)
        # nothing of a partition given up is committed afterwards
        assert all((TOPIC, 1) not in c for c in rig.consumer.commits[commits:])

    asyncio.run(scenario())
    assert rig.consumer.committed[TOPIC, 1] == 2


def test_a_closing_in_the_same_batch_as_the_threshold_fires_then_resolves() -> None:
    """Time: a tombstone recorded after the threshold reports the stall with its real duration."""
    rig = Rig()
    rig.send(preview("gone", previewing=0), key="gone", at=0)
    rig.send(None, key="gone", at=25)
    asyncio.run(drain(rig.daemon()))
    records = [json.loads(v or b"") for v in rig.producer.values(ALERTS)]
    assert [(a["status"], a["resolution"]) for a in records] == [
        ("firing", None),
        ("resolved", "tombstone"),
    ]
    assert records[1]["stalledForSeconds"] == 25


def test_a_timestamp_ten_years_ahead_fires_nothing() -> None:
    """Time: one record stamped ten years ahead is counted, not believed; stalls stay on time."""
    rig = Rig()
    rig.send(preview("watched", previewing=0), key="watched", at=0)
    skewed = preview("skewed", mode="power", active=False, created=1)  # not even watched
    rig.send(skewed, key="skewed", at=10 * 365 * 86400)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 2)
        assert rig.alerts() == []
        assert rig.sample("dialer_future_timestamps_total", {"topic": TOPIC, "partition": "0"}) == 1
        rig.clock.advance(11)  # the watched preview's threshold passes on the wall clock
        await until(lambda: rig.alerts() == [("watched", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_while_the_broker_is_away_the_clock_stops() -> None:
    """Time: the monitor's own outage fires nothing; what was really stuck fires on return."""
    rig = Rig()
    rig.send(preview("a", previewing=0), key="a", at=0)
    rig.send(preview("b", previewing=0), key="b", at=0)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 2)
        rig.clock.advance(3)
        await asyncio.sleep(0.05)
        rig.consumer.answering = False  # the broker goes away at 3
        b_moved = preview("b", previewing=0, placed=5, connected=6)
        rig.send(b_moved, key="b", at=6)  # held by its producer meanwhile
        rig.clock.advance(17)  # back at 20: both were due at 10
        await asyncio.sleep(0.1)
        assert rig.alerts() == []
        rig.consumer.answering = True
        await until(lambda: rig.consumer.committed.get(TP) == 3)  # b's move, held, is in
        await asyncio.sleep(0.05)
        assert rig.alerts() == []  # producers get a grace to flush what they held
        rig.clock.advance(5)
        await until(lambda: rig.alerts() == [("a", "firing", "previewing")])
        await asyncio.sleep(0.05)
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert rig.alerts() == [("a", "firing", "previewing")]


def test_a_silent_source_is_one_alert_not_a_storm() -> None:
    """Time: heartbeats stop, previews in flight do not stall; one source_silent, then back."""
    # a previewing threshold beyond the source's grace (20 s past its last heartbeat)
    config = settings(
        runtime={"source_silent_seconds": 30}, stalls={"thresholds": {"previewing": 30}}
    )
    rig = Rig(config=config)
    value, headers = beat(0)
    rig.consumer.produce(value, headers=headers, timestamp=rig.clock.wall())
    for n in range(5):
        rig.send(preview(f"p{n}", previewing=0), key=f"p{n}", at=0)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 6)
        for _ in range(60):  # the source is silent for a minute
            rig.clock.advance(1)
            await asyncio.sleep(0.003)
        await until(lambda: ("poller", "firing", "source_silent") in rig.alerts())
        assert [a for a in rig.alerts() if a[2] != "source_silent"] == []
        # the source returns: p0 moved on meanwhile, the rest really stalled
        rig.send(preview("p0", previewing=0, placed=5), key="p0", at=61)
        value, headers = beat(61)
        rig.consumer.produce(value, headers=headers, timestamp=rig.clock.wall())
        await until(lambda: ("poller", "resolved", "source_silent") in rig.alerts())
        await until(lambda: len([a for a in rig.alerts() if a[2] == "previewing"]) == 4)
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    silent = [a for a in rig.alerts() if a[2] == "source_silent"]
    assert silent == [
        ("poller", "firing", "source_silent"),
        ("poller", "resolved", "source_silent"),
    ]
    assert {a[0] for a in rig.alerts() if a[2] == "previewing"} == {"p1", "p2", "p3", "p4"}


def test_a_topic_without_heartbeats_runs_on_the_wall_clock() -> None:
    """Time: with no heartbeat ever seen, a quiet topic still raises its stall on time."""
    rig = Rig()
    rig.send(preview("a", previewing=0), key="a", at=0)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)
        rig.clock.advance(9)
        await asyncio.sleep(0.05)
        assert rig.alerts() == []
        rig.clock.advance(1.5)
        await until(lambda: rig.alerts() == [("a", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_a_campaign_preview_timeout_sets_its_previewing_threshold() -> None:
    """Campaign settings: a preview time-out plus grace becomes the campaign's threshold."""
    config = settings(
        stalls={"preview_timeout_grace_seconds": 5, "thresholds": {"previewing": 300}}
    )
    rig = Rig(config=config)
    rig.send(preview("quick", previewing=0), key="quick", at=0)  # campaign c-1

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)
        rig.clock.advance(20)
        await asyncio.sleep(0.05)
        assert rig.alerts() == []  # 300 s by the settings
        rig.campaigns.pending.append(
            (b"c-1", campaigns.encode(campaigns.Campaign("c-1", preview_time_out_seconds=10)))
        )
        await until(lambda: rig.alerts() == [("quick", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    record = json.loads(rig.producer.values(ALERTS)[0] or b"")
    assert record["thresholdSeconds"] == 15


@dataclass
class SlowFollower(FakeFollower):
    """A campaigns topic whose first answer takes a while, as a broker's first fetch can."""

    delay: float = 0.3

    async def changes(self, timeout: float) -> list[StateRecord]:
        """What was appended since the last call, the first time after a delay."""
        await asyncio.sleep(self.delay)
        self.delay = 0.0
        return await super().changes(timeout)


def test_a_restarted_owner_applies_campaign_thresholds_before_it_judges() -> None:
    """Campaign settings: after a restart, a preview within its campaign's time-out never fires."""
    config = settings(stalls={"preview_timeout_grace_seconds": 5, "thresholds": {"previewing": 10}})
    rig = Rig(config=config)
    timeout = (b"c-1", campaigns.encode(campaigns.Campaign("c-1", preview_time_out_seconds=100)))
    rig.campaigns.pending.append(timeout)
    rig.send(preview("slow", previewing=0), key="slow", at=0)  # campaign c-1: 105 s

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)
        await asyncio.sleep(0.05)
        daemon.stop()
        await asyncio.wait_for(task, 5)
        rig.clock.advance(20)  # restarted 20 s later: due at 10 by the configured threshold
        rig.campaigns = SlowFollower([timeout])
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(0.5)
        assert rig.alerts() == []
        rig.clock.advance(90)
        await until(lambda: rig.alerts() == [("slow", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_a_revocation_saves_the_state_waiting_for_its_interval_before_it_commits() -> None:
    """Guarantee: the next owner restores every change the committed offsets stand for."""
    rig = Rig(config=settings(kafka={"state_save_seconds": 60}))
    rig.send(preview("a", created=0), key="a", at=0)

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)  # a's first state saved
        rig.clock.advance(1)
        rig.send(preview("a", created=0, previewing=1), key="a", at=1)
        await until(lambda: daemon.step.partitions[TP].next_offset == 2)
        await asyncio.sleep(0.05)  # turns of the loop: the interval is not over
        assert (rig.consumer.committed, len(rig.producer.topics[STATE])) == ({TP: 1}, 1)
        await rig.consumer.rebalance(revoke=[TP])
        assert rig.consumer.committed == {TP: 2}
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    restored = changelog.decode(rig.producer.topics[STATE][-1].value or b"")
    assert restored is not None
    assert restored[0].previewing is not None


def test_nothing_is_saved_after_a_batch_given_up_at_shutdown() -> None:
    """Guarantee: a stall whose alert was given up is not saved as fired by the last flush."""
    rig = Rig(config=settings(kafka={"state_save_seconds": 60}))
    rig.producer.refusing.add(ALERTS)
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)

    async def first_life() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)
        rig.clock.advance(20)  # stuck comes due: its alert is refused, its state not due
        await until(lambda: rig.sample("dialer_output_errors_total") >= 1)
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(first_life())
    saved = [changelog.decode(r.value or b"") for r in rig.producer.topics[STATE]]
    assert [fired for _, fired in filter(None, saved)] == [None]
    rig.producer.refusing.clear()
    asyncio.run(drain(rig.daemon()))
    assert rig.alerts() == [("stuck", "firing", "previewing")]


def test_a_restart_re_announces_the_firing_stall_to_alertmanager() -> None:
    """Guarantee: a restarted owner re-posts a restored stall at once: same alertId and start."""
    rig = Rig()
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("later", created=30), key="later", at=30)
    asyncio.run(drain(rig.daemon()))  # the stall fired and was saved; the instance stops
    (fired,) = [json.loads(v or b"") for v in rig.producer.values(ALERTS)]

    async def restart() -> list[dict[str, Any]]:
        async with alertmanager() as fake:
            # no re-send round within the test: the post can only be the announcement
            sink = AlertmanagerSink(
                AlertmanagerSettings(urls=[fake.url], resend_seconds=3600), CollectorRegistry()
            )
            sink.start()
            daemon = rig.daemon(sink)
            task = asyncio.create_task(daemon.run())
            await fake.until({"stuck"})
            daemon.stop()
            await asyncio.wait_for(task, 5)
            await sink.stop()
            return [alert for post in fake.posts for alert in post]

    (posted,) = asyncio.run(restart())
    assert posted["annotations"]["alert_id"] == fired["alertId"]
    crossed = msgspec.json.decode(json.dumps(fired), type=Alert)
    assert posted["startsAt"] == to_alertmanager(crossed).starts_at
    assert "endsAt" not in posted
    assert rig.alerts() == [("stuck", "firing", "previewing")]  # the topic has it once


def test_after_a_revocation_the_old_owner_posts_nothing_for_the_partition() -> None:
    """Guarantee: once a partition is revoked, its alerts leave the old owner no more."""
    rig = Rig(partitions=3)
    rig.send(preview("kept", previewing=0), key="kept", at=0, partition=0)
    rig.send(preview("given-up", previewing=0), key="given-up", at=0, partition=1)
    # the same stall on partitions 1 and 2 (one alertId, like a silent source's): still owned
    rig.send(preview("shared", previewing=0), key="shared", at=0, partition=1)
    rig.send(preview("shared", previewing=0), key="shared", at=0, partition=2)
    for partition in range(3):
        rig.send(preview(f"later-{partition}", created=30), key="l", at=30, partition=partition)

    async def scenario() -> tuple[FakeAlertmanager, int]:
        async with alertmanager() as fake:
            sink = AlertmanagerSink(
                AlertmanagerSettings(urls=[fake.url], resend_seconds=0.05), CollectorRegistry()
            )
            sink.start()
            daemon = rig.daemon(sink)
            task = asyncio.create_task(daemon.run())
            await fake.until({"kept", "given-up", "shared"})
            await rig.consumer.rebalance(revoke=[(TOPIC, 1)])
            mark = len(fake.posts)
            # the re-sends go on meanwhile: three rounds for what this instance still owns
            await until(lambda: fake.times_posted("kept", since=mark) >= 3)
            daemon.stop()
            await asyncio.wait_for(task, 5)
            await sink.stop()
            return fake, mark

    fake, mark = asyncio.run(scenario())
    assert fake.interactions(since=mark) == {"kept", "shared"}
    assert fake.times_posted("shared", since=mark) >= 3


def test_poisoned_state_records_are_skipped_and_the_partition_restores() -> None:
    """Restore: inf, NaN and too-deep records are skipped, counted, logged; the rest restore."""
    rig = Rig()
    rig.send(preview("stuck", previewing=0), key="stuck", at=0)
    rig.send(preview("waiting", created=5), key="waiting", at=5)

    async def first() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 2)
        rig.clock.advance(11)
        await until(lambda: rig.alerts() == [("stuck", "firing", "previewing")])
        daemon.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(first())
    state = rig.producer.topics[STATE]
    good = next(r.value for r in state if r.key == b"waiting")
    assert good is not None
    bad = {
        b"bad-inf": poisoned(good, previewing=math.inf),
        b"bad-nan": poisoned(good, previewing=math.nan),
        b"bad-deep": too_deep(),
    }
    offsets = {}
    for key, value in bad.items():
        offsets[key.decode()] = len(state)
        state.append(FakeRecord(STATE, 0, len(state), 0, key, value))

    async def restarted() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: daemon.joined and not daemon.step.partitions[TP].restoring)
        assert {a.interaction_id for a in daemon.step.stalled()} == {"stuck"}
        rig.clock.advance(10)  # "waiting", restored, comes due
        await until(lambda: len(rig.alerts()) == 2)
        assert {a.interaction_id for a in daemon.step.stalled()} == {"stuck", "waiting"}
        daemon.stop()
        await asyncio.wait_for(task, 5)

    with capture_logs(logging.WARNING) as events:
        asyncio.run(restarted())
    assert rig.alerts() == [("stuck", "firing", "previewing"), ("waiting", "firing", "created")]
    skipped = "dialer_state_records_skipped_total"
    assert rig.sample(skipped, {"reason": "not_finite"}) == 2
    assert rig.sample(skipped, {"reason": "too_deep"}) == 1
    assert rig.sample("dialer_state_restoring_partitions") == 0
    logged = sorted(
        (e["offset"], e["partition"], e["interaction"], e["reason"])
        for e in events_named(events, "state_record_skipped")
    )
    assert logged == [
        (offsets["bad-inf"], 0, "bad-inf", "not_finite"),
        (offsets["bad-nan"], 0, "bad-nan", "not_finite"),
        (offsets["bad-deep"], 0, "bad-deep", "too_deep"),
    ]


def test_a_campaign_record_nested_too_deep_is_skipped_and_the_follower_goes_on() -> None:
    """Campaigns: a record nested too deep is skipped, counted, logged; the next one applies."""
    config = settings(
        stalls={"preview_timeout_grace_seconds": 5, "thresholds": {"previewing": 300}}
    )
    rig = Rig(config=config)
    rig.send(preview("quick", previewing=0), key="quick", at=0)  # campaign c-1
    deep = b'{"id":"c-1","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    good = campaigns.encode(campaigns.Campaign("c-1", preview_time_out_seconds=10))

    async def scenario() -> None:
        daemon = rig.daemon()
        task = asyncio.create_task(daemon.run())
        await until(lambda: rig.consumer.committed.get(TP) == 1)
        rig.clock.advance(20)
        rig.campaigns.pending.append((b"c-1", deep))
        skipped = {"reason": "too_deep"}
        await until(lambda: rig.sample("dialer_campaign_records_skipped_total", skipped) == 1)
        rig.campaigns.pending.append((b"c-1", good))
        await until(lambda: rig.alerts() == [("quick", "firing", "previewing")])
        assert rig.sample("dialer_task_failures_total", {"task": "campaigns"}) == 0
        daemon.stop()
        await asyncio.wait_for(task, 5)

    with capture_logs(logging.WARNING) as events:
        asyncio.run(scenario())
    (skipped,) = events_named(events, "campaign_record_skipped")
    assert skipped["campaign"] == "c-1"


def test_a_partition_full_of_bad_records_logs_ten_lines_and_a_sum() -> None:
    """Restore: past ten skipped records, the rest are counted and summed up in one line."""
    rig = Rig()
    state = rig.producer.topics.setdefault(STATE, [])
    for n in range(25):
        state.append(FakeRecord(STATE, 0, n, 0, f"bad-{n}".encode(), b"\xc1garbage"))
    with capture_logs(logging.WARNING) as events:
        asyncio.run(drain(rig.daemon()))
    assert rig.sample("dialer_state_records_skipped_total", {"reason": "unreadable"}) == 25
    lines = events_named(events, "state_record_skipped")
    assert [e["offset"] for e in lines] == list(range(10))
    (summed,) = events_named(events, "state_records_skipped")
    assert (summed["skipped"], summed["reasons"]) == (25, {"unreadable": 25})


def test_a_large_restore_lets_the_loop_turn_and_keeps_the_newest_within_the_budget() -> None:
    """Restore: 25k interactions go back in chunks, others served meanwhile; the newest stay."""
    budget = 10_000
    cost = memory.bytes_per_interaction(engine.compiled())
    rig = Rig(config=settings(tracking={"memory_limit_bytes": budget * cost}))
    saved = Tracker(StallPolicy(), Limits(max_interactions=100_000), Observations())
    for n in range(25_000):  # power calls, no stall; seen a tenth of a second apart
        saved.ingest(
            factory.snap(f"i{n}", mode="power", active=False, created=0), T0 - 3000 + n / 10
        )
    records, _ = changelog.encode_changed(set(saved.states), saved.states, saved.stalled)
    state = rig.producer.topics.setdefault(STATE, [])
    for key, value in records:
        state.append(FakeRecord(STATE, 0, len(state), 0, key, value))

    async def restored() -> tuple[list[str], list[str]]:
        daemon = rig.daemon()
        said: list[str] = []

        async def ask() -> None:  # another coroutine, asking as /readyz does
            while True:
                problems = daemon.readiness()
                said.extend(problems)
                partition = daemon.step.partitions.get(TP)
                if partition is not None and partition.restoring and not problems:
                    said.append("ready while restoring")
                await asyncio.sleep(0)

        asker = asyncio.create_task(ask())
        task = asyncio.create_task(daemon.run())
        await until(lambda: daemon.joined and not daemon.step.partitions[TP].restoring, 60)
        asker.cancel()
        kept = list(daemon.step.partitions[TP].tracker.states)
        await until(lambda: rig.sample("dialer_interactions_shed_total", SHED) > 0)
        daemon.stop()
        await asyncio.wait_for(task, 5)
        return said, kept

    said, kept = asyncio.run(restored())
    decoding = {s for s in said if "records decoded" in s and "25000 of 25000" not in s}
    restoring = {s for s in said if "interactions restored" in s and "25000 of" not in s}
    assert len(decoding) >= 2
    assert len(restoring) >= 2
    assert "ready while restoring" not in said
    # shedding makes a hundredth of the budget more room than it needs, at once
    assert budget * 0.99 <= len(kept) <= budget
    assert kept == [f"i{n}" for n in range(25_000 - len(kept), 25_000)]  # oldest first
    assert rig.sample("dialer_interactions_shed_total", SHED) == 25_000 - len(kept)
    assert rig.sample("dialer_tracking_budget_interactions") == budget
    assert rig.sample("dialer_tracked_interactions") == len(kept)
