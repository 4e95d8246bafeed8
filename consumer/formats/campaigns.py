"""Campaign settings records: what the poller publishes about each campaign, and what follows.

The poller (``interaction-consumer poll``) publishes one record per campaign it polls to
the compacted topic ``<topic>.campaigns``, keyed by campaign id, whenever the campaign's
settings change. Its value is a JSON object in the Platform API's own spelling::

    {"id": "c-1", "name": "Renewals", "dialingMode": "preview", "campaignStatus": "on",
     "previewTimeOutSeconds": 60, "previewAutoEnd": false}

Every field but ``id`` may be ``null``. The daemon reads the topic to choose thresholds: a
campaign whose previews auto-place after ``previewTimeOutSeconds`` (more than 0) has a
preview still unplaced after that long stuck for certain, so unless the settings give
that campaign an explicit ``previewing`` threshold, its threshold is the timeout plus
``stalls.preview_timeout_grace_seconds`` (:func:`previewing_threshold`).
"""

from __future__ import annotations

import math
from typing import Final

import msgspec


class Campaign(msgspec.Struct, frozen=True, rename="camel"):
    """The settings of one campaign that matter to the monitor.

    Decodes the Platform API's ``Campaign`` (unknown fields ignored) and is the value of
    a campaigns-topic record.
    """

    id: str
    name: str | None = None
    dialing_mode: str | None = None
    campaign_status: str | None = None
    preview_time_out_seconds: float | None = None
    preview_auto_end: bool | None = None

    @property
    def is_preview(self) -> bool:
        """The campaign dials in preview mode (the API writes modes in lowercase, maybe not all)."""
        return (self.dialing_mode or "").lower() == "preview"


# the five lists of a campaign's interactions answer (``pendingInteractions``, ...), by the
# bucket name the poller gives each interaction (its ``genesys.bucket`` header)
BUCKETS: Final = ("pending", "proceeding", "previewing", "interacting", "scheduled")
# the statuses of a campaign that may still have interactions in flight
LIVE_STATUSES: Final = frozenset({"on", "stopping", "forced_stopping"})
# the statuses of a campaign that dials no more: proof that its interactions are over
ENDED_STATUSES: Final = frozenset({"off", "complete", "forced_off", "invalid"})

# a preview time-out longer than this is no setting a campaign means: it is ignored
MAX_TIMEOUT_SECONDS: Final = 86400.0

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Campaign)


def encode(campaign: Campaign) -> bytes:
    """The value of ``campaign``'s record."""
    return _encoder.encode(campaign)


class UnreadableError(ValueError):
    """A record value that holds no campaign; ``reason`` says why, as a bounded label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# why a value may hold no campaign: the labels of the follower's skipped-records metric
UNREADABLE_REASONS: Final = ("unreadable", "too_deep")


def read(value: bytes) -> Campaign:
    """The campaign a record value holds; raises :class:`UnreadableError` if it holds none.

    msgspec raises ``RecursionError``, not ``DecodeError``, for a value nested too deep
    (an unknown field's, which it would otherwise skip): that too is a value to skip.
    """
    try:
        return _decoder.decode(value)
    except msgspec.DecodeError:
        raise UnreadableError("unreadable") from None
    except RecursionError:
        raise UnreadableError("too_deep") from None


def decode(value: bytes | None) -> Campaign | None:
    """The campaign a record value holds; ``None`` for a tombstone or unreadable value."""
    if value is None:
        return None
    try:
        return read(value)
    except UnreadableError:
        return None


def topic_for(topic: str) -> str:
    """The campaigns topic that goes with the interactions topic ``topic``."""
    return f"{topic}.campaigns"


def previewing_threshold(campaign: Campaign, grace_seconds: float) -> float | None:
    """The ``previewing`` threshold ``campaign``'s own preview timeout implies, in seconds.

    ``None`` when the campaign never auto-places (timeout absent or 0): the configured
    thresholds apply. An explicit per-campaign ``previewing`` threshold in the settings
    takes precedence over this one; the caller checks that.
    """
    timeout = campaign.preview_time_out_seconds
    if timeout is None or not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        return None  # never auto-places, or a value no campaign means (a day at most)
    threshold = timeout + grace_seconds
    # the settings refuse an infinite grace; should one get here all the same, the
    # configured thresholds apply rather than a due time the stall timers cannot hold
    return threshold if math.isfinite(threshold) else None
