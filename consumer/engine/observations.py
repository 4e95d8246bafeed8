"""What the engine measures for the metrics, as plain counts and durations. Pure.

The engine imports no metrics library: the tracker counts what happens into
:class:`Observations`, which the metrics drain once per batch
(:mod:`consumer.observe.metrics`). This module says what is measured and under which
bounded labels: the outcome of each record, each stage reached by dialing mode, the
stage-to-stage latencies (:data:`LATENCIES`), removals, firings and shedding, and the
interactions waiting in the pending list.
"""

from __future__ import annotations

import typing
from typing import Final, Literal, TypeVar

from consumer.engine.alerting import Removal
from consumer.engine.interaction import Interaction, time_of
from consumer.engine.lifecycle import belongs, call_floor
from consumer.engine.lists import PENDING
from consumer.engine.stages import LABELS, STAGES, UNKNOWN, Stage

# What became of one consumed record (``invalid``, dead-lettered, is counted by the caller).
Outcome = Literal["applied", "duplicate", "late", "ended", "tombstone", "invalid"]
OUTCOMES: Final[tuple[Outcome, ...]] = typing.get_args(Outcome)

KNOWN_MODES: Final = frozenset(
    {"preview", "power", "predictive", "progressive", "agentless", "external", "unknown"}
)


def mode_label(mode: str | None) -> str:
    """A bounded label for a dialing mode: the known ones, ``unknown`` or ``other``."""
    if mode is None:
        return "unknown"
    return mode if mode in KNOWN_MODES else "other"


# Why an interaction was shed: the tracker's own cap (``tracking.max_interactions``) or the
# process's memory budget (``tracking.memory_limit_bytes``)...
ShedReason = Literal["cap", "budget"]
SHED_REASONS: Final[tuple[ShedReason, ...]] = typing.get_args(ShedReason)
# ...and what its stall was: a fired one (resolved as ``evicted``), one running, or none
ShedStall = Literal["fired", "pending", "none"]
SHED_STALLS: Final[tuple[ShedStall, ...]] = typing.get_args(ShedStall)

# the (stage label, mode label) key of each transition, made once rather than per record
_TRANSITIONS: Final = {
    mode: tuple((label, mode) for label in LABELS) for mode in (*KNOWN_MODES, "other")
}

# Latency histograms: (name, from stage, to stage), observed when "to" is reached.
LATENCIES: Final = (
    ("created_to_previewing", Stage.CREATED, Stage.PREVIEWING),
    ("created_to_placed", Stage.CREATED, Stage.PLACED),
    ("previewing_to_placed", Stage.PREVIEWING, Stage.PLACED),
    ("placed_to_routed", Stage.PLACED, Stage.ROUTED),
    ("placed_to_connected", Stage.PLACED, Stage.CONNECTED),
    ("connected_to_wrapped_up", Stage.CONNECTED, Stage.WRAPPED_UP),
)

# the latencies each stage completes: (name, from stage), in the order of LATENCIES
_LATENCIES_TO: Final = tuple(
    [(name, int(start)) for name, start, end in LATENCIES if end is stage] for stage in STAGES
)

_K = TypeVar("_K")


def tally(counts: dict[_K, int], key: _K) -> None:
    """One more ``key`` in ``counts``."""
    counts[key] = counts.get(key, 0) + 1


class Observations:
    """What happened since the metrics last looked: plain counts, drained once per batch."""

    def __init__(self) -> None:
        self.events: dict[Outcome, int] = {}
        self.transitions: dict[tuple[str, str], int] = {}
        # (latency name, mode label) -> the durations observed
        self.latencies: dict[tuple[str, str], list[float]] = {}
        self.removals: dict[Removal, int] = {}
        self.firings: dict[str, int] = {}
        self.shed: dict[tuple[ShedReason, ShedStall], int] = {}

    def invalid(self) -> None:
        """One more record that could not be tracked (dead-lettered by the caller)."""
        tally(self.events, "invalid")

    def drain(self) -> Observations:
        """Hand over everything observed so far and start afresh."""
        taken = Observations()
        taken.events, self.events = self.events, taken.events
        taken.transitions, self.transitions = self.transitions, taken.transitions
        taken.latencies, self.latencies = self.latencies, taken.latencies
        taken.removals, self.removals = self.removals, taken.removals
        taken.firings, self.firings = self.firings, taken.firings
        taken.shed, self.shed = self.shed, taken.shed
        return taken


def latencies(state: Interaction, reached: list[Stage]) -> list[tuple[str, float]]:
    """Stage-to-stage durations of the current call completed by the stages just reached."""
    if not reached:
        return []
    floor = call_floor(state)
    observed = []
    for end in reached:
        finished = time_of(state, end)
        for name, start in _LATENCIES_TO[end]:
            if belongs(state, start, floor):
                began = time_of(state, start)
                if finished != UNKNOWN and began <= finished:
                    observed.append((name, finished - began))
    return observed


def observe(obs: Observations, state: Interaction, reached: list[Stage]) -> None:
    """Count the stages ``state`` just reached, and the latencies they complete, by its mode."""
    mode = mode_label(state.mode)
    keys = _TRANSITIONS[mode]
    for stage in reached:
        tally(obs.transitions, keys[stage])
    durations_of = obs.latencies
    for name, seconds in latencies(state, reached):
        key = (name, mode)
        durations = durations_of.get(key)
        if durations is None:
            durations = durations_of[key] = []
        durations.append(seconds)


def pending_by_campaign(states: dict[str, Interaction], counts: dict[str | None, int]) -> None:
    """Add to ``counts`` the interactions of ``states`` in the pending list, by campaign id.

    For the backlog gauge, at every scrape: one pass over every tracked interaction, a
    few tens of milliseconds for a million (compiled, each field read is a direct one).
    """
    for state in states.values():
        if state.bucket == PENDING:
            campaign = state.campaign
            counts[campaign] = counts.get(campaign, 0) + 1
