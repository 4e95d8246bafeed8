"""The Platform API's interactions answer, read the way the poller needs it. Pure.

Each interaction of ``GET /api/v2/outbound/campaigns/{id}/interactions`` is kept as the
exact bytes the API returned (``msgspec.Raw``): the poller publishes them unchanged, only
adding the ``campaign`` member where the object has none.
"""

from __future__ import annotations

from typing import Final

import msgspec

from consumer.formats.campaigns import BUCKETS


class Answer(msgspec.Struct, rename="camel"):
    """A ``CampaignInteractions`` answer, each interaction kept as its own raw bytes."""

    # msgspec.Raw takes no union with None: absent is empty, null is b"null"
    campaign: msgspec.Raw = msgspec.Raw()
    pending_interactions: list[msgspec.Raw] | None = None
    proceeding_interactions: list[msgspec.Raw] | None = None
    previewing_interactions: list[msgspec.Raw] | None = None
    interacting_interactions: list[msgspec.Raw] | None = None
    scheduled_interactions: list[msgspec.Raw] | None = None

    def complete(self) -> bool:
        """The answer is a listing: at least one of the five lists is there (even empty).

        Every member is optional in the API's model, so ``{}`` decodes; an answer without
        any list says nothing of what is absent, and must not count as a poll.
        """
        return any(getattr(self, f"{bucket}_interactions") is not None for bucket in BUCKETS)

    def lists(self) -> list[tuple[str, list[msgspec.Raw]]]:
        """(bucket, interactions) for each of the five lists."""
        return [(bucket, getattr(self, f"{bucket}_interactions") or []) for bucket in BUCKETS]


class Probe(msgspec.Struct):
    """What the poller reads of an interaction: its id, and whether it names its campaign."""

    id: str | None = None
    campaign: msgspec.Raw = msgspec.Raw()  # absent: empty


def present(ref: msgspec.Raw) -> bool:
    """A ``campaign`` member that is there and not null."""
    return bytes(ref) not in (b"", b"null")


answer_decoder: Final = msgspec.json.Decoder(Answer)
probe_decoder: Final = msgspec.json.Decoder(Probe)


def with_campaign(raw: bytes, campaign: bytes) -> bytes:
    """``raw`` (a JSON object) with a ``campaign`` member added at its end.

    Only called when the object has no ``campaign`` or a null one: a JSON reader keeps
    the last of two members of one name, so the added one wins either way, and every
    byte of the original stays as it was.
    """
    body = raw.rstrip()[:-1].rstrip()  # without the closing brace
    separator = b"" if body.endswith(b"{") else b","
    return body + separator + b'"campaign":' + campaign + b"}"


class _Ref(msgspec.Struct):
    id: str | None = None


class _Owned(msgspec.Struct):
    campaign: _Ref | None = None


_owned_decoder: Final = msgspec.json.Decoder(_Owned)


def campaign_of(value: bytes) -> str | None:
    """The ``campaign.id`` of an interaction value the poller published, if it has one.

    The poller adds the answer's ``campaign`` to every interaction that lacks it, so each
    value it published says which campaign's poll listed it (of two members of one name
    the last wins, as :func:`with_campaign` relies on).
    """
    try:
        ref = _owned_decoder.decode(value).campaign
    except msgspec.DecodeError:
        return None
    return None if ref is None else ref.id
