"""Campaign settings from the poller's campaigns topic: thresholds that follow each campaign.

The poller publishes each campaign's settings to ``<topic>.campaigns`` (compacted, keyed
by campaign id). Every instance follows the whole topic: a campaign whose previews
auto-place after ``previewTimeOutSeconds`` has a preview still unplaced after that long
stuck for certain, so unless the settings name an explicit ``previewing`` threshold for
it, its threshold becomes that timeout plus ``stalls.preview_timeout_grace_seconds``. A
change re-times every running stall; a stall that is due under the new threshold fires at
the next tick.

A new owner, after a restart, reads the topic to its end before it judges a restored
partition (:func:`loaded`): judged by the configured thresholds meanwhile, a preview within
its campaign's time-out would fire. A topic that cannot be read holds judgement back
:data:`LOAD_WAIT` seconds at most.

A record the follower cannot use (not a campaign, nested too deep to decode, or one whose
applying raises) is skipped: logged once with its key (the campaign id; the follower is
not told offsets), counted (``dialer_campaign_records_skipped_total{reason}``), and the
campaign keeps the threshold it had. The records after it apply as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Final

from consumer.backoff import Backoff
from consumer.daemon.metrics import CAMPAIGN_FAILED, ConsumerMetrics
from consumer.daemon.ports import Follower
from consumer.engine.stalls import StallPolicy
from consumer.engine.tracker import Tracker
from consumer.errors import BrokerError
from consumer.formats import campaigns
from consumer.observe.logs import fields

log = logging.getLogger(__name__)

# how long a restored partition waits for the campaigns topic before it is judged without
LOAD_WAIT: Final = 30.0


async def follow(
    follower: Follower,
    policy: StallPolicy,
    grace: float,
    lock: asyncio.Lock,
    trackers: Callable[[], Iterable[Tracker]],
    metrics: ConsumerMetrics,
    read: asyncio.Event | None = None,
) -> None:
    """Apply campaign settings as they come, until cancelled; ``read`` set once all are."""
    backoff = Backoff(1.0, 60.0)
    while True:
        try:
            changes = await follower.changes(timeout=1.0)
        except BrokerError as exc:
            delay = backoff.next()
            log.warning("campaigns_unread", extra=fields(error=str(exc), retry_in=delay))
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        if not changes and read is not None:
            read.set()  # a wait that brought nothing: what the topic held is applied
        changed = []
        for key, value in changes:
            campaign_id = key.decode("utf-8", errors="replace")
            try:
                derived = _derived(value, grace)
                if policy.derive_previewing(campaign_id, derived):
                    changed.append((campaign_id, derived))
            except campaigns.UnreadableError as exc:
                metrics.campaign_skipped[exc.reason].inc()
                log.warning(
                    "campaign_record_skipped", extra=fields(campaign=campaign_id, reason=exc.reason)
                )
            except Exception:  # one record must not end the follower: said, counted, skipped
                metrics.campaign_skipped[CAMPAIGN_FAILED].inc()
                log.exception(
                    "campaign_record_skipped",
                    extra=fields(campaign=campaign_id, reason=CAMPAIGN_FAILED),
                )
        if changed:
            async with lock:  # the trackers are the batch step's
                for tracker in trackers():
                    tracker.retime()
            for campaign_id, derived in changed:
                log.info(
                    "campaign_threshold",
                    extra=fields(campaign=campaign_id, previewing_seconds=derived),
                )


async def loaded(read: asyncio.Event, wait: float = LOAD_WAIT) -> None:
    """Wait until the campaigns topic was read to its end, ``wait`` seconds at most."""
    if read.is_set():
        return
    try:
        await asyncio.wait_for(read.wait(), wait)
    except TimeoutError:
        log.warning("campaigns_not_loaded", extra=fields(waited_seconds=wait))
        read.set()  # judged on the configured thresholds now; later settings re-time


def _derived(value: bytes | None, grace: float) -> float | None:
    """The previewing threshold a record implies; ``None`` for a tombstone (no campaign)."""
    if value is None:
        return None
    return campaigns.previewing_threshold(campaigns.read(value), grace)
