"""The engine's rules built from the settings: stall policy and tracker limits.

Settings are plain data (:mod:`consumer.config` imports nothing of the engine); this is
where they become engine objects, at start, so a stall rule that does not exist stops the
start with a :class:`~consumer.config.ConfigError` naming the setting.
"""

from __future__ import annotations

from consumer.config import ConfigError, Settings
from consumer.engine.stalls import RULES, StallPolicy, unknown_rules
from consumer.engine.tracker import Limits


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
    return StallPolicy(stalls.thresholds, stalls.campaigns, watch_all_modes=stalls.watch_all_modes)


def tracker_limits(settings: Settings) -> Limits:
    """The tracker bounds the settings describe."""
    return Limits(settings.tracking.ttl_seconds, settings.tracking.max_interactions)
