"""What the engine measures: the stage-to-stage latencies of the current call."""

from __future__ import annotations

from consumer.engine.lifecycle import merge, new_interaction
from consumer.engine.observations import latencies
from tests.unit.factory import snap


def test_latencies_of_the_current_call() -> None:
    """Reaching a stage yields the documented stage-to-stage durations."""
    state = new_interaction()
    reached = merge(state, snap(created=0, previewing=2, placed=12, routed=15, connected=20))
    assert reached is not None
    assert dict(latencies(state, reached)) == {
        "created_to_previewing": 2,
        "created_to_placed": 12,
        "previewing_to_placed": 10,
        "placed_to_routed": 3,
        "placed_to_connected": 8,
    }
    reached = merge(state, snap(wrapped_up=80))
    assert reached is not None
    assert dict(latencies(state, reached)) == {"connected_to_wrapped_up": 60}


def test_second_call_latencies_ignore_first_call_times() -> None:
    """On a new call, creation and the first preview are not part of its latencies."""
    state = new_interaction()
    merge(state, snap(created=0, previewing=2, placed=12, wrapped_up=60))
    reached = merge(state, snap(placed=100, routed=104))
    assert reached is not None
    assert dict(latencies(state, reached)) == {"placed_to_routed": 4}
