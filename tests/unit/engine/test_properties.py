"""Order-insensitivity: any permutation or duplication of snapshots gives one final state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.engine.interaction import Interaction
from consumer.engine.lifecycle import merge, new_interaction
from consumer.engine.lists import LISTS, NO_LIST
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.stages import STAGES
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from tests.unit.factory import T0, snap, tracker

moments = st.one_of(st.none(), st.integers(0, 20).map(lambda n: T0 + n))
names = st.sampled_from([None, "x", "y"])

arbitrary_snapshots = st.builds(
    Snapshot,
    interaction_id=st.just("i-1"),
    campaign_id=names,
    campaign_name=names,
    agent_id=names,
    queue_id=names,
    dialing_mode=st.sampled_from([None, "preview", "power"]),
    active=st.sampled_from([None, True, False]),
    times=st.tuples(*(moments for _ in STAGES)),
    conversation_ended=moments,
    bucket=st.integers(NO_LIST, len(LISTS)),
)


def shuffled_with_duplicates(
    items: list[Snapshot],
) -> st.SearchStrategy[list[Snapshot]]:
    """Every item at least once, some more than once, in any order."""
    extra = st.lists(st.sampled_from(items), max_size=len(items)) if items else st.just([])
    return extra.flatmap(lambda dup: st.permutations(items + dup))


def merge_all(snaps: list[Snapshot]) -> Interaction:
    """Merge ``snaps`` in order into a fresh interaction."""
    state = new_interaction()
    for s in snaps:
        merge(state, s)
    return state


@settings(max_examples=300)
@given(
    st.lists(arbitrary_snapshots, min_size=1, max_size=6).flatmap(
        lambda snaps: st.tuples(st.just(snaps), shuffled_with_duplicates(snaps))
    )
)
def test_merge_is_order_and_duplicate_insensitive(
    pair: tuple[list[Snapshot], list[Snapshot]],
) -> None:
    """Merging arbitrary snapshots in any order, with duplicates, gives the same state."""
    original, reordered = pair
    assert merge_all(reordered) == merge_all(original)


@st.composite
def preview_lifecycles(draw: st.DrawFn) -> list[Snapshot]:
    """Cumulative snapshots of one interaction hosting one or two preview calls."""
    calls = draw(st.integers(1, 2))
    close_between = draw(st.booleans())  # the preview flag drops between calls
    steps: list[Snapshot] = []
    known: dict[str, float] = {"created": 0}
    clock = 0.0
    for call in range(calls):
        for stage in ("previewing", "placed", "routed", "connected", "wrapped_up"):
            clock += draw(st.integers(1, 50))
            known[stage] = clock
            last = stage == "wrapped_up" and (call == calls - 1 or close_between)
            steps.append(snap(agent=f"a-{call}", active=not last, times=known))
    return steps[: draw(st.integers(1, len(steps)))]  # maybe cut off mid-flight


def final_view(t: Tracker) -> tuple[object, ...]:
    """What a tracker knows at the end, without arrival bookkeeping."""
    states = {
        iid: (s.stage, list(s.times), s.agent, s.closed, s.conversation_ended)
        for iid, s in t.states.items()
    }
    return states, {iid: version for iid, (version, *_) in t.ended.items()}, t.stage_counts


@settings(max_examples=300)
@given(
    preview_lifecycles().flatmap(
        lambda snaps: st.tuples(st.just(snaps), shuffled_with_duplicates(snaps))
    )
)
def test_tracker_final_state_is_order_insensitive(
    pair: tuple[list[Snapshot], list[Snapshot]],
) -> None:
    """Tracking a lifecycle's snapshots in any order, with duplicates, ends the same way."""
    in_order, reordered = pair
    now = T0 + 1000  # one clock for all: order is the only difference
    expected, actual = tracker(StallPolicy()), tracker(StallPolicy())
    for s in in_order:
        expected.ingest(s, now)
    for s in reordered:
        actual.ingest(s, now)
    assert final_view(actual) == final_view(expected)


@settings(max_examples=300)
@given(preview_lifecycles())
def test_snapshot_republished_after_a_tombstone_is_tracked_as_new(snaps: list[Snapshot]) -> None:
    """Tombstone, then the latest snapshot again: the same stalls as a first sighting, once."""
    now = T0 + 1000
    t = tracker(StallPolicy())
    for s in snaps:
        t.ingest(s, now)
    t.tick(now + 10_000)
    t.ingest(Tombstone("i-1"), now + 10_001)
    again = t.ingest(snaps[-1], now + 10_002) + t.tick(now + 20_000)
    fresh = tracker(StallPolicy())
    first = fresh.ingest(snaps[-1], now + 10_002) + fresh.tick(now + 20_000)
    assert [(e.status, e.stall.stage) for e in again] == [(e.status, e.stall.stage) for e in first]
    assert sum(e.status == "firing" for e in again) <= 1
