"""The engine's rules built from the settings: stall policy, tracker limits, the batch step.

Settings are plain data (:mod:`consumer.settings.schema` imports nothing of the engine); this is
where they become engine objects, at start, so a stall rule that does not exist stops the
start with a :class:`~consumer.settings.schema.ConfigError` naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from consumer import engine
from consumer.daemon import memory
from consumer.daemon.step import Step
from consumer.daemon.step_settings import StepSettings
from consumer.engine.limits import Budget, Limits
from consumer.engine.observations import Observations
from consumer.engine.sources import SourceWatch
from consumer.engine.stalls import RULES, StallPolicy, unknown_rules
from consumer.engine.tracker import Tracker
from consumer.settings.schema import ConfigError, Settings


def stall_policy(settings: Settings) -> StallPolicy:
    """The stall rules the settings describe."""
    stalls = settings.stalls
    places = [("stalls.thresholds", stalls.thresholds)] + [
        (f"stalls.campaigns.{campaign}", overrides)
        for campaign, overrides in stalls.campaigns.items()
    ]
    for where, thresholds in places:
        unknown = unknown_rules(thresholds)
        if unknown:
            raise ConfigError(
                f"{where}: unknown stall rule {unknown[0]!r} (known: {', '.join(RULES)})"
            )
    return StallPolicy(
        stalls.thresholds,
        stalls.campaigns,
        watch_all_modes=stalls.watch_all_modes,
        created_without_bucket=stalls.created_without_bucket,
    )


def tracking_budget(
    settings: Settings,
    trackers: Callable[[], Iterable[Tracker]],
    cgroup: Path = memory.CGROUP_ROOT,
) -> Budget | None:
    """The process's memory budget for the ``trackers``: set, or from the container's limit.

    ``None`` when neither says one (no container limit): each partition is capped alone.
    """
    share = memory.tracking_bytes(
        settings.tracking.memory_limit_bytes, memory.container_limit(cgroup)
    )
    if share is None:
        return None
    return Budget(memory.budget_interactions(share, engine.compiled()), trackers)


def tracker_limits(settings: Settings, budget: Budget | None = None) -> Limits:
    """The tracker bounds the settings describe; ``budget`` shared by all the trackers."""
    tracking = settings.tracking
    return Limits(tracking.ttl_seconds, tracking.max_interactions, budget)


def step_settings(settings: Settings, *, persist_state: bool) -> StepSettings:
    """What the batch step (and replay, which runs its pipeline) takes of the settings."""
    kafka, runtime = settings.kafka, settings.runtime
    return StepSettings(
        max_record_bytes=kafka.max_record_bytes,
        check_keys=not kafka.repartition,
        max_clock_skew=runtime.max_clock_skew_seconds,
        retired_sources=frozenset(runtime.retired_sources),
        expected_sources=frozenset(runtime.expected_sources),
        persist_state=persist_state,
        save_every=kafka.state_save_seconds,
    )


def batch_step(
    settings: Settings,
    policy: StallPolicy,
    observations: Observations,
    *,
    persist_state: bool,
    budget: Budget | None = None,
) -> Step:
    """The daemon's batch step, its trackers sharing ``policy``, ``observations``, ``budget``."""
    runtime = settings.runtime
    limits = tracker_limits(settings, budget)
    return Step(
        step_settings(settings, persist_state=persist_state),
        lambda: Tracker(policy, limits, observations),
        lambda topic: SourceWatch(
            topic, runtime.source_silent_seconds, runtime.source_grace_seconds
        ),
    )
