"""The lifecycle rules: stage derivation, merging, endings."""

from __future__ import annotations

import pytest

from consumer.engine import lifecycle
from consumer.engine.interaction import Interaction
from consumer.engine.lifecycle import derive_stage, merge, new_interaction
from consumer.engine.snapshot import Snapshot
from consumer.engine.stages import Stage
from tests.unit.factory import T0, snap


def merged(*snaps: Snapshot) -> Interaction:
    """Merge ``snaps`` in order into a fresh interaction."""
    state = new_interaction()
    for s in snaps:
        merge(state, s)
    return state


@pytest.mark.parametrize(
    ("offsets", "stage"),
    [
        ({}, Stage.CREATED),
        ({"created": 0}, Stage.CREATED),
        ({"created": 0, "previewing": 1}, Stage.PREVIEWING),
        ({"created": 0, "previewing": 1, "placed": 5}, Stage.PLACED),
        ({"created": 0, "previewing": 1, "placed": 5, "routed": 6}, Stage.ROUTED),
        ({"created": 0, "placed": 5, "connected": 7}, Stage.CONNECTED),
        ({"placed": 5, "routed": 8, "connected": 7}, Stage.CONNECTED),
        ({"placed": 5, "connected": 7, "wrapped_up": 60}, Stage.WRAPPED_UP),
        # a placement newer than the last wrap-up is a new call
        ({"placed": 100, "connected": 7, "wrapped_up": 60}, Stage.PLACED),
        ({"placed": 100, "routed": 101, "wrapped_up": 60}, Stage.ROUTED),
        # a preview popped after the last wrap-up is the next preview
        ({"previewing": 90, "placed": 5, "wrapped_up": 60}, Stage.PREVIEWING),
    ],
)
def test_stage_is_derived_from_timestamps(offsets: dict[str, float], stage: Stage) -> None:
    """Each combination of known timestamps puts the interaction in the documented stage."""
    assert derive_stage(snap(times=offsets).times) is stage


def test_merge_keeps_newest_timestamps_and_reports_reached_stages() -> None:
    """Merging reports each stage the current call newly reached, in order, once."""
    state = new_interaction()
    assert merge(state, snap(created=0)) == [Stage.CREATED]
    assert merge(state, snap(created=0, previewing=1, placed=5)) == [
        Stage.PREVIEWING,
        Stage.PLACED,
    ]
    assert merge(state, snap(created=0, previewing=1, placed=5)) is None  # duplicate
    assert merge(state, snap(created=0)) is None  # late and older
    assert state.stage is Stage.PLACED


def test_late_snapshot_never_moves_backwards() -> None:
    """An older snapshot arriving after a newer one leaves stage and times unchanged."""
    state = merged(snap(created=0, previewing=1, placed=5, routed=6))
    before = state.times
    assert merge(state, snap(created=0, previewing=1)) is None
    assert state.stage is Stage.ROUTED
    assert state.times == before


def test_attribute_is_last_writer_wins_by_snapshot_version() -> None:
    """The newest snapshot's agent wins whatever the arrival order."""
    old, new = snap(agent="a-old", placed=5), snap(agent="a-new", placed=100, wrapped_up=50)
    for order in ((old, new), (new, old)):
        assert merged(*order).agent == "a-new"


def test_absent_attribute_does_not_erase_a_known_one() -> None:
    """A snapshot without a campaign keeps the campaign an earlier one named."""
    state = merged(snap(campaign="c-9", created=0), snap(campaign=None, previewing=1))
    assert state.campaign == "c-9"


def test_inactive_wins_a_version_tie() -> None:
    """Same timestamps, one active and one inactive: inactive wins in either order."""
    on = snap(active=True, placed=5, wrapped_up=60)
    off = snap(active=False, placed=5, wrapped_up=60)
    assert not merged(on, off).active
    assert not merged(off, on).active


def test_new_call_reenters_call_stages() -> None:
    """A second call on the same interaction reaches placed and routed again."""
    state = merged(snap(placed=5, routed=6, connected=7, wrapped_up=60))
    assert merge(state, snap(placed=100, routed=101)) == [Stage.PLACED, Stage.ROUTED]
    assert state.stage is Stage.ROUTED


def test_previous_call_times_arriving_late_are_not_transitions() -> None:
    """A late routed time from an earlier call is merged but is not a stage of this call."""
    state = merged(snap(placed=100, wrapped_up=60))
    assert merge(state, snap(routed=6)) == []
    assert state.stage is Stage.PLACED


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        (snap(active=False, placed=5, wrapped_up=60), "wrapped_up"),
        (snap(active=None, placed=5, wrapped_up=60), "wrapped_up"),
        (snap(active=True, placed=5, wrapped_up=60), None),
        (snap(active=False, placed=5, conversation_ended=30), "conversation_ended"),
        (snap(active=True, placed=5, conversation_ended=30), None),
        (snap(active=False, placed=5, connected=6), None),
        # the conversation of an earlier call says nothing about the next preview
        (snap(active=False, placed=5, wrapped_up=60, previewing=90, conversation_ended=30), None),
    ],
)
def test_ending_rules(s: Snapshot, expected: str | None) -> None:
    """An interaction ends when wrapped up or its conversation is over, and no preview is live."""
    assert lifecycle.ending(merged(s)) == expected


def test_ended_interaction_reopens_only_for_newer_activity() -> None:
    """After an end, only a newer placement, preview or active snapshot starts a new call."""
    end = T0 + 60
    assert not lifecycle.starts_new_call(snap(placed=5, wrapped_up=60, active=False), end)
    assert not lifecycle.starts_new_call(snap(placed=5), end)
    assert lifecycle.starts_new_call(snap(placed=100), end)
    assert lifecycle.starts_new_call(snap(previewing=90), end)
    assert lifecycle.starts_new_call(snap(active=True, placed=5, wrapped_up=70), end)
