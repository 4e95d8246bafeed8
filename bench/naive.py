"""The naive baseline: tracking as a user might first write it, without this project.

``json.loads`` per message, a dataclass per interaction, a dict of states by id, the
stage taken from the newest of the six lifecycle timestamps, a tombstone or a closed
wrap-up removing the state. No stall timers, no metrics, no outputs: it does less than
the service, so beating it by a margin is the least the service must do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# each stage's timestamp, in both spellings producers use, in stage order
STAGE_FIELDS = (
    ("creationTime", "creation_time"),
    ("previewPopDeliveredTime", "preview_pop_delivered_time"),
    ("callPlacedTime", "call_placed_time"),
    ("callRoutedTime", "call_routed_time"),
    ("previewConnectedTime", "preview_connected_time"),
    ("lastActivePreviewWrapupTime", "last_active_preview_wrapup_time"),
)
WRAPPED_UP = len(STAGE_FIELDS) - 1


@dataclass
class NaiveState:
    """What the naive tracker keeps of one interaction."""

    interaction_id: str
    campaign: str | None
    stage: int
    updated: float


class NaiveTracker:
    """A dict of the latest state per interaction id."""

    def __init__(self) -> None:
        self.states: dict[str, NaiveState] = {}
        self.invalid = 0

    def handle(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record: a JSON snapshot, or a tombstone (null value) for ``key``."""
        if value is None:
            self.states.pop((key or b"").decode(errors="replace"), None)
            return
        try:
            document: Any = json.loads(value)
        except ValueError:
            self.invalid += 1
            return
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            self.invalid += 1
            return
        stage, newest = -1, 0.0
        for index, names in enumerate(STAGE_FIELDS):
            text = document.get(names[0]) or document.get(names[1])
            if isinstance(text, str):
                moment = datetime.fromisoformat(text).timestamp()
                if moment >= newest:
                    stage, newest = index, moment
        iid = document["id"]
        known = self.states.get(iid)
        if known is not None and known.updated > newest:
            return  # an older snapshot, late
        active = document.get("activePreviewCall", document.get("active_preview_call"))
        if stage == WRAPPED_UP and not active:
            self.states.pop(iid, None)
            return
        campaign = document.get("campaign")
        campaign_id = campaign.get("id") if isinstance(campaign, dict) else None
        self.states[iid] = NaiveState(iid, campaign_id, stage, newest)
