"""What one poll of a campaign changes against what was published of it. Pure.

* **What is published.** Each interaction of the five lists, keyed by its ``id``, as
  the exact bytes the API returned for it (decoded as ``msgspec.Raw``: no field renamed,
  dropped or re-formatted), with ``campaign`` added from the answer's own ``campaign``
  when the object has none; only when those bytes, or the list they are in, differ from
  what was last published for the id (an entry that is not an object, has no id or is larger than
  ``kafka.max_record_bytes`` is skipped and counted). Headers: ``genesys.bucket``
  (which list) and ``genesys.polled.at`` (when the poll began, ISO-8601 UTC). An
  interaction absent from two consecutive successful polls of its campaign gets a
  tombstone (one miss may be the API's own hiccup); so do those of a campaign proven
  over. Only a complete answer is a successful poll: one without any of the lists
  (``{}``), one that does not decode, or an error proves no absence and counts no miss
  (the :class:`~consumer.genesys.poller.Poller` compares complete answers only).
  Nothing of an interaction is remembered but a 16-byte digest of what was published,
  its list's name and its miss count.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import msgspec

from consumer.engine.model import BUCKET_HEADER, iso
from consumer.formats.campaigns import Campaign
from consumer.genesys.answer import Answer, Probe, present, probe_decoder, with_campaign

POLLED_AT_HEADER: Final = "genesys.polled.at"
MISSES_BEFORE_TOMBSTONE: Final = 2
DIGEST_BYTES: Final = 16

# a record to publish: key, value (None: a tombstone), headers
Outgoing = tuple[bytes, bytes | None, list[tuple[str, bytes]]]


@dataclass
class Watched:
    """One campaign being polled, and what was published of its interactions."""

    campaign: Campaign
    vouched: float  # when its last successful poll began (when it was first watched, before)
    # id -> digest of the value published, then its list's name (see unchanged)
    published: dict[str, bytes] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)  # id -> successful polls absent
    seen: Counter[str] = field(default_factory=Counter)  # bucket -> interactions, last poll
    failures: int = 0  # polls failed in a row
    failing: str = ""  # why the last one failed (a metric label), while failures > 0
    error: str = ""  # and its message, for readiness

    def remember(self, changes: Changes, began: float) -> None:
        """The poll that began at ``began`` was published: what it showed is what was."""
        self.published.update(changes.current)  # what was sent, and the lists of the rest
        for iid in changes.gone:
            del self.published[iid]
            del changes.misses[iid]
        self.misses = changes.misses
        self.seen, self.vouched = changes.seen, began


def digest(value: bytes) -> bytes:
    """The digest remembered of a value published."""
    return hashlib.blake2b(value, digest_size=DIGEST_BYTES).digest()


def unchanged(published: bytes | None, polled: bytes) -> bool:
    """What was published for an id (value digest, then list name) says what a poll shows.

    The list counts: a callback moved from ``scheduled`` to ``pending`` keeps its bytes but
    not its rules (docs/genesys.md, "The API's five lists"). A digest read back from the topic
    (:meth:`~consumer.genesys.poller.Poller.rebuild`) has no list, since the records' headers
    are not read back: its value alone decides, and the poll's list is remembered from then on.
    """
    if published is None:
        return False
    if len(published) == DIGEST_BYTES:
        return published == polled[:DIGEST_BYTES]
    return published == polled


@dataclass
class Changes:
    """What a complete answer shows against what was published of its campaign."""

    current: dict[str, bytes]  # id -> digest and list of what the poll shows
    records: list[Outgoing]  # the interactions that changed, to publish
    misses: dict[str, int]  # id -> successful polls absent, this one included
    gone: list[str]  # absent long enough: tombstoned
    seen: Counter[str]  # bucket -> interactions
    invalid: int  # entries skipped: not an object, no id, too large


def compare(watched: Watched, answer: Answer, began: float, max_value_bytes: int) -> Changes:
    """What the complete ``answer`` of a poll that began at ``began`` changes."""
    campaign_ref = (
        bytes(answer.campaign)
        if present(answer.campaign)
        else msgspec.json.encode({"id": watched.campaign.id, "name": watched.campaign.name})
    )
    polled_at = iso(began).encode()
    current: dict[str, bytes] = {}
    changes: list[Outgoing] = []
    seen: Counter[str] = Counter()
    invalid = 0
    for bucket, interactions in answer.lists():
        for raw in interactions:
            try:
                probe = probe_decoder.decode(raw)
            except msgspec.DecodeError:
                probe = Probe()  # not an object, or an id that is not a string
            if probe.id is None or probe.id in current:
                invalid += probe.id is None
                continue
            value = bytes(raw)
            if not present(probe.campaign):
                value = with_campaign(value, campaign_ref)
            if len(value) > max_value_bytes:
                # the broker would refuse it, failing the whole campaign every round
                invalid += 1
                continue
            seen[bucket] += 1
            polled = current[probe.id] = digest(value) + bucket.encode()
            if not unchanged(watched.published.get(probe.id), polled):
                headers = [(BUCKET_HEADER, bucket.encode()), (POLLED_AT_HEADER, polled_at)]
                changes.append((probe.id.encode(), value, headers))
    misses = {
        iid: watched.misses.get(iid, 0) + 1 for iid in watched.published if iid not in current
    }
    gone = [iid for iid, n in misses.items() if n >= MISSES_BEFORE_TOMBSTONE]
    return Changes(current, changes, misses, gone, seen, invalid)
