"""Saved state: what a tracker writes, a new owner reads back, with stalls as they were."""

from __future__ import annotations

import math

import msgspec
import pytest

from consumer.engine.alerting import Fired
from consumer.engine.interaction import Interaction
from consumer.engine.lists import NO_LIST, SCHEDULED
from consumer.engine.sources import SourceState
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.formats import changelog, layouts
from consumer.formats.changelog import rebuild
from tests.unit.factory import T0, snap, statuses, tracker


def saved(t: Tracker) -> dict[str, tuple[Interaction, Fired | None]]:
    """Everything a tracker would write, read back through the codec."""
    out = {}
    for iid, state in t.states.items():
        restored = changelog.decode(changelog.encode(state, t.stalled.get(iid)))
        assert restored is not None
        out[iid] = restored
    return out


def test_state_and_fired_stall_survive_the_round_trip() -> None:
    """A restored tracker has the same interactions, stages and fired alerts."""
    old = tracker()
    old.ingest(snap("a", created=0, previewing=1), T0 + 1)
    old.ingest(snap("b", placed=0, routed=2), T0 + 2)
    old.tick(T0 + 400)
    new = tracker()
    new.restore(saved(old))
    assert new.states == old.states
    assert new.stalled == old.stalled
    assert new.stage_counts == old.stage_counts


def test_fired_stall_is_not_fired_again_after_restore() -> None:
    """A stall that fired before the restart stays fired: no second firing."""
    old = tracker()
    old.ingest(snap(previewing=0), T0)
    assert len(old.tick(T0 + 301)) == 1
    new = tracker()
    new.restore(saved(old))
    assert new.tick(T0 + 3000) == []  # within the TTL, long past the threshold
    (resolved,) = new.ingest(snap(previewing=0, placed=500), T0 + 500)
    assert resolved.status == "resolved"


def test_stall_due_during_downtime_fires_once_after_restore() -> None:
    """A stall that came due while nobody owned the partition fires once, on the next tick."""
    old = tracker()
    old.ingest(snap(previewing=0), T0)
    new = tracker(StallPolicy())
    new.restore(saved(old))
    assert statuses(new.tick(T0 + 900)) == [("firing", "i-1", "previewing")]
    assert new.tick(T0 + 901) == []


def test_changes_are_reported_once_for_saving() -> None:
    """Changed, fired and removed interactions are handed out once for the changelog."""
    t = tracker()
    t.ingest(snap("a", previewing=0), T0)
    t.ingest(snap("b", active=False, placed=0, wrapped_up=5), T0 + 5)
    assert t.take_dirty() == {"a", "b"}
    assert t.take_dirty() == set()
    t.ingest(snap("a", previewing=0), T0 + 6)  # a duplicate changes nothing worth saving
    assert t.take_dirty() == set()
    t.tick(T0 + 400)
    assert t.take_dirty() == {"a"}


def test_unreadable_values_are_rejected_not_raised() -> None:
    """Garbage or another format version decodes to None."""
    assert changelog.decode(b"\xc1garbage") is None
    valid = changelog.encode(tracker_state(), None)
    assert changelog.decode(valid.replace(bytes([changelog.FORMAT]), b"\x07", 1)) is None


def tracker_state() -> Interaction:
    """One merged interaction."""
    t = tracker()
    t.ingest(snap(previewing=0), T0)
    return t.states["i-1"]


# Written by the previous release (format 1, commit 7213b0f) for interactions merged from
# T0-based snapshots: one with a fired previewing stall (popped at T0 + 1.123, fired at
# T0 + 400), one previewing since T0 + 350 (unfired), one with a creation time only.
FORMAT_1 = {
    "i-fired": (
        "9b0196cb41dac1aba0000000cb41dac1aba047df3bc0c0c0c0c092cb41dac1aba047df3bc292cb41dac1aba0"
        "47df3ba3632d3192cb41dac1aba047df3ba6537072696e6792cb41dac1aba047df3ba3612d3192cb41dac1ab"
        "a047df3ba3712d3192cb41dac1aba047df3ba770726576696577cb41dac1aba080000092de0010a673746174"
        "7573a6666972696e67a7616c6572744964b036653461373437633764643638393332ad696e74657261637469"
        "6f6e4964a7692d6669726564aa63616d706169676e4964a3632d31ac63616d706169676e4e616d65a6537072"
        "696e67a76167656e744964a3612d31a771756575654964a3712d31ab6469616c696e674d6f6465a770726576"
        "696577a57374616765aa70726576696577696e67a472756c65aa70726576696577696e67ae7374616765456e"
        "74657265644174b8323032362d31312d32355430393a34363a34312e3132335aac7374616c6c656453696e63"
        "65b8323032362d31312d32355430393a34363a34312e3132335ab07468726573686f6c645365636f6e6473cb"
        "4072c00000000000b17374616c6c6564466f725365636f6e6473cb4078ee083126e979aa6f62736572766564"
        "4174b8323032362d31312d32355430393a35333a32302e3030305aaa7265736f6c7574696f6ec085a472756c"
        "65aa70726576696577696e67a5737461676501a7656e7465726564cb41dac1aba047df3ba573696e6365cb41"
        "dac1aba047df3ba97468726573686f6c64cb4072c00000000000"
    ),
    "i-pending": (
        "9b0196cb41dac1aba0000000cb41dac1abf7800000c0c0c0c0c092cb41dac1abf7800000c292cb41dac1abf7"
        "800000a3632d3192cb41dac1abf7800000a6537072696e6792cb41dac1abf7800000a3612d3192cb41dac1ab"
        "f7800000a3712d3192cb41dac1abf7800000a770726576696577cb41dac1abf7800000c0"
    ),
    "i-bare": (
        "9b0196cb41dac1aba0000000c0c0c0c0c0c092cb41dac1aba0000000c3c0c0c0c0c0cb41dac1aba0400000c0"
    ),
}


# Written by the release before this one (format 2, commit 85acc5a), the same way: the
# three interactions above from snapshots of the test factory (campaign "c-1", agent "a-1").
FORMAT_2 = {
    "i-fired": (
        "dc001b02cb41dac1aba0000000cb41dac1aba047df3bc0c0c0c0c0c2cb41dac1aba047df3ba3632d31cb41da"
        "c1aba047df3ba3432d31cb41dac1aba047df3ba3612d31cb41dac1aba047df3ba3712d31cb41dac1aba047df"
        "3ba770726576696577cb41dac1aba047df3bcb41dac1aba047df3baa70726576696577696e6701cb41dac1ab"
        "a047df3bcb41dac1aba047df3bcb4072c00000000000cb41dac1ac04000000"
    ),
    "i-pending": (
        "dc001b02cb41dac1aba0000000cb41dac1abf7800000c0c0c0c0c0c2cb41dac1abf7800000a3632d31cb41da"
        "c1abf7800000a3432d31cb41dac1abf7800000a3612d31cb41dac1abf7800000a3712d31cb41dac1abf78000"
        "00a770726576696577cb41dac1abf7800000cb41dac1abf7800000c000c0cb0000000000000000cb00000000"
        "00000000cb0000000000000000"
    ),
    "i-bare": (
        "dc001b02cb41dac1aba0000000c0c0c0c0c0c0c3cb41dac1aba0000000c0cb0000000000000000c0cb000000"
        "0000000000c0cb0000000000000000c0cb0000000000000000c0cb0000000000000000cb41dac1aba0400000"
        "c000c0cb0000000000000000cb0000000000000000cb0000000000000000"
    ),
}


# Written by format 3 (commit 6e55de3), the same way: the three interactions above, each
# also created at T0 (i-bare has no attributes), i-fired's stall fired at T0 + 400.
FORMAT_3 = {
    "i-fired": (
        "dc001203cb41dac1aba0000000cb41dac1aba047df3bc0c0c0c0c0c2cb41dac1aba047df3ba3632d31a3432d"
        "31a3612d31a3712d31a770726576696577c0cb41dac1aba047df3b96aa70726576696577696e6701cb41dac1"
        "aba047df3bcb41dac1aba047df3bcb4072c00000000000cb41dac1ac04000000"
    ),
    "i-pending": (
        "dc001203cb41dac1aba0000000cb41dac1abf7800000c0c0c0c0c0c2cb41dac1abf7800000a3632d31a3432d"
        "31a3612d31a3712d31a770726576696577c0cb41dac1abf7800000c0"
    ),
    "i-bare": (
        "dc001203cb41dac1aba0000000c0c0c0c0c0c0c3cb41dac1aba0000000c0c0c0c0c0c0cb41dac1aba0400000c0"
    ),
}


@pytest.mark.parametrize(
    "written", [FORMAT_1, FORMAT_2, FORMAT_3], ids=["format-1", "format-2", "format-3"]
)
def test_state_written_by_the_previous_release_restores(written: dict[str, str]) -> None:
    """Records of earlier formats restore with their stages, attributes and fired stall intact."""
    restored = {iid: changelog.decode(bytes.fromhex(value)) for iid, value in written.items()}
    assert all(r is not None for r in restored.values())
    t = tracker()
    t.restore({iid: r for iid, r in restored.items() if r is not None})
    fired = t.stalled["i-fired"]
    assert (fired.stall.rule, fired.stall.since, fired.at) == ("previewing", T0 + 1.123, T0 + 400)
    state = t.states["i-pending"]
    assert (state.previewing, state.campaign, state.agent, state.active) == (
        T0 + 350,
        "c-1",
        "a-1",
        True,
    )
    assert t.states["i-bare"].created == T0
    # the fired stall stays fired; the pending one fires once when due; moving on resolves
    assert statuses(t.tick(T0 + 651)) == [("firing", "i-pending", "previewing")]
    (resolved,) = t.ingest(snap("i-fired", previewing=1.123, placed=700), T0 + 700)
    assert (resolved.status, resolved.fired_at) == ("resolved", T0 + 400)
    assert resolved.stalled_for == pytest.approx(700 - 1.123)


def test_format_3_restores_unchanged_with_no_list() -> None:
    """A format 3 record restores to the very state it was written from, knowing no list."""
    t = tracker()
    t.ingest(snap("i-fired", created=0, previewing=1.123), T0 + 1.123)
    t.tick(T0 + 400)
    t.ingest(snap("i-pending", created=0, previewing=350), T0 + 350)
    bare = snap("i-bare", created=0, mode=None, active=None, campaign=None, agent=None, queue=None)
    t.ingest(bare, T0 + 1)
    for iid, value in FORMAT_3.items():
        restored = changelog.decode(bytes.fromhex(value))
        assert restored == (t.states[iid], t.stalled.get(iid))
        assert restored[0].bucket == NO_LIST


def test_format_4_round_trips_the_list_with_its_version() -> None:
    """The list and the version that set it are saved and read back; no list saves nil."""
    t = tracker()
    t.ingest(snap(created=0, bucket="scheduled"), T0)
    t.ingest(snap("plain", created=0), T0)
    # a newer snapshot without the header: the list's version is no longer the flag's
    t.ingest(snap("older", created=0, bucket="pending"), T0)
    t.ingest(snap("older", created=0, previewing=9, active=False), T0 + 9)
    assert (t.states["older"].bucket_version, t.states["older"].closed_version) == (T0, T0 + 9)
    for iid in ("i-1", "plain", "older"):
        value = changelog.encode(t.states[iid], None)
        assert value[3] == changelog.FORMAT == 4
        assert changelog.decode(value) == (t.states[iid], None)
    assert (t.states["i-1"].bucket, t.states["plain"].bucket) == (SCHEDULED, NO_LIST)
    assert changelog.encode(t.states["plain"], None).endswith(b"\xc0\xc0")  # no stall, no list


def test_a_restored_previous_release_record_saves_in_the_current_format() -> None:
    """A format-1 state written back is in the current format, and reads back the same."""
    old = changelog.decode(bytes.fromhex(FORMAT_1["i-fired"]))
    assert old is not None
    again = changelog.decode(changelog.encode(*old))
    assert again == old
    assert changelog.encode(*old)[3] == changelog.FORMAT  # after the 3-byte array header


def test_changed_interactions_are_saved_or_tombstoned_and_a_failure_stops_no_other() -> None:
    """Changed ids get their state or a tombstone; one that cannot be encoded stops no other."""
    t = tracker()
    t.ingest(snap("a", previewing=0), T0)
    t.ingest(snap("b", placed=0), T0)
    t.tick(T0 + 400)
    states: dict[str, object] = dict(t.states)
    states["broken"] = object()  # not an interaction: encoding it raises
    records, failed = changelog.encode_changed(
        {"a", "b", "gone", "broken"},
        states,  # type: ignore[arg-type]
        t.stalled,
    )
    values = dict(records)
    assert set(values) == {b"a", b"b", b"gone"}
    assert values[b"gone"] is None
    restored = changelog.decode(values[b"a"] or b"")
    assert restored is not None
    assert restored == (t.states["a"], t.stalled.get("a"))
    assert [iid for iid, _ in failed] == ["broken"]


def test_a_source_record_round_trips_and_an_interaction_reader_skips_it() -> None:
    """Source state reads back; the interaction decoder (an older release's reader) says None."""
    state = SourceState(T0 + 15, 1.0, T0 + 15)
    value = changelog.encode_source(state)
    assert changelog.read_source(value) == state
    assert changelog.decode(value) is None  # skipped and counted by a release before it
    assert changelog.read_source(changelog.encode(tracker_state(), None)) == changelog.UNREADABLE
    key = changelog.source_key("genesys-poller")
    assert changelog.source_of(key) == "genesys-poller"
    assert changelog.source_of(b"i-1") is None


def poisoned(value: bytes, **times: float) -> bytes:
    """A changelog value (this format) with ``times`` (``previewing=inf``) put in its fields."""
    saved = layouts.decoder_v4.decode(value)
    return msgspec.msgpack.encode(msgspec.structs.replace(saved, **times))


def too_deep() -> bytes:
    """A format-1 changelog value whose fired alert has an unknown field nested 100k deep."""
    value = bytes.fromhex(FORMAT_1["i-fired"])
    saved = msgspec.msgpack.decode(value)
    saved[-1][0]["extra"] = "DEEP"
    return msgspec.msgpack.encode(saved).replace(b"\xa4DEEP", b"\x91" * 100_000 + b"\xc0")


PENDING_V3 = changelog.encode(*(changelog.decode(bytes.fromhex(FORMAT_1["i-pending"])) or ()))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (poisoned(PENDING_V3, previewing=math.inf), changelog.NOT_FINITE),
        (poisoned(PENDING_V3, previewing=math.nan), changelog.NOT_FINITE),
        (poisoned(PENDING_V3, seen=-math.inf), changelog.NOT_FINITE),
        (poisoned(PENDING_V3, closed_version=math.nan), changelog.NOT_FINITE),
        (too_deep(), changelog.TOO_DEEP),
        (b"\xc1garbage", changelog.UNREADABLE),
    ],
    ids=["inf-time", "nan-time", "inf-seen", "nan-version", "too-deep", "garbage"],
)
def test_a_value_that_cannot_be_restored_says_why_and_never_raises(
    value: bytes, reason: str
) -> None:
    """read() names the reason (inf/NaN, nesting, damage); decode() gives None; none raises."""
    assert changelog.read(value) == reason
    assert changelog.decode(value) is None


def test_a_poisoned_fired_stall_is_not_finite() -> None:
    """A fired stall whose firing time is inf is refused like a state time."""
    old = tracker()
    old.ingest(snap(previewing=0), T0)
    old.tick(T0 + 301)
    value = changelog.encode(old.states["i-1"], old.stalled["i-1"])
    saved = layouts.decoder_v4.decode(value)
    assert saved.fired is not None
    fired = (*saved.fired[:5], math.inf)
    broken = msgspec.msgpack.encode(msgspec.structs.replace(saved, fired=fired))
    assert changelog.read(broken) == changelog.NOT_FINITE


@pytest.mark.parametrize("bad", [math.inf, math.nan], ids=["inf", "nan"])
def test_restore_refuses_an_interaction_it_cannot_time_and_takes_the_rest(bad: float) -> None:
    """Tracker.restore leaves out an entry due at inf/NaN, names it, and restores the rest."""
    old = tracker()
    old.ingest(snap("a", previewing=0), T0)
    entries = saved(old)
    good = entries["a"][0]
    attributes = (good.campaign, good.campaign_name, good.agent, good.queue, good.mode)
    times = (good.created, bad, None, None, None, None)
    versions = (good.closed_version,) * 5
    broken = rebuild(times, None, good.closed, good.closed_version, attributes, versions, good.seen)
    new = tracker()
    assert new.restore({"broken": (broken, None), **entries}) == ["broken"]
    assert set(new.states) == {"a"}
    assert statuses(new.tick(T0 + 301)) == [("firing", "a", "previewing")]


def test_format_4_round_trips_the_source_and_older_formats_have_none() -> None:
    """The source is appended to format 4 and read back; without one, nothing is appended."""
    t = tracker()
    t.ingest(snap("i-1", previewing=0, bucket="scheduled"), T0)
    t.tick(T0 + 400)
    state, fired = t.states["i-1"], t.stalled.get("i-1")
    value = changelog.encode(state, fired, "genesys-poller")
    assert changelog.read_sourced(value) == (state, fired, "genesys-poller")
    assert changelog.decode(value) == (state, fired)
    plain = changelog.encode(state, fired)
    assert len(value) == len(plain) + 1 + len("genesys-poller")  # a short string appended
    assert changelog.read_sourced(plain) == (state, fired, None)
    for old in (FORMAT_1, FORMAT_2, FORMAT_3):
        for hexed in old.values():
            restored = changelog.read_sourced(bytes.fromhex(hexed))
            assert not isinstance(restored, str)
            assert restored[2] is None
