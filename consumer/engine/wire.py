"""The wire structs: the fields of a ``CampaignInteraction`` the engine uses, as msgspec reads them.

Producers publish the dialer's JSON in camelCase (the API's own names); producers that
serialised through the old Ruby SDK emit snake_case, and a record may mix both. Each
multi-word field is declared twice, once per spelling (the snake_case one as
``<name>_snake``), so one decode pass reads both; :mod:`consumer.engine.model` says which
wins and what the engine keeps.

This module is never compiled (``setup.py``): msgspec builds its decoder from the structs'
annotations, which a mypyc-compiled module does not keep as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

SNAKE: Final = "_snake"


def wire_name(attribute: str) -> str:
    """The JSON key of a struct attribute: camelCase, or snake_case for a ``_snake`` twin."""
    if attribute.endswith(SNAKE):
        return attribute.removesuffix(SNAKE)
    head, *rest = attribute.split("_")
    return head + "".join(word.capitalize() for word in rest)


class CampaignRef(msgspec.Struct, frozen=True, gc=False):
    """The campaign's ``DomainEntityRef``: its id, and its name for people reading alerts."""

    id: str | None = None
    name: str | None = None


class EntityRef(msgspec.Struct, frozen=True, gc=False):
    """An agent's or a queue's ``DomainEntityRef``: only its id is used."""

    id: str | None = None


class ConversationRef(msgspec.Struct, frozen=True, rename=wire_name, gc=False):
    """The conversation hosting the call; ``endTime`` is null while it is up."""

    end_time: datetime | None = None
    end_time_snake: datetime | None = None


class CampaignInteraction(msgspec.Struct, frozen=True, rename=wire_name, gc=False):
    """The fields of one dialer snapshot that the engine uses, in both spellings."""

    id: str | None = None
    campaign: CampaignRef | None = None
    agent: EntityRef | None = None
    queue: EntityRef | None = None
    conversation: ConversationRef | None = None
    dialing_mode: str | None = None
    dialing_mode_snake: str | None = None
    active_preview_call: bool | None = None
    active_preview_call_snake: bool | None = None
    # the six stage times, in Stage order
    creation_time: datetime | None = None
    preview_pop_delivered_time: datetime | None = None
    call_placed_time: datetime | None = None
    call_routed_time: datetime | None = None
    preview_connected_time: datetime | None = None
    last_active_preview_wrapup_time: datetime | None = None
    creation_time_snake: datetime | None = None
    preview_pop_delivered_time_snake: datetime | None = None
    call_placed_time_snake: datetime | None = None
    call_routed_time_snake: datetime | None = None
    preview_connected_time_snake: datetime | None = None
    last_active_preview_wrapup_time_snake: datetime | None = None


decoder: Final = msgspec.json.Decoder(CampaignInteraction)
