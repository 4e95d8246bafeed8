"""The API's five lists, by name and by number: the values of the ``genesys.bucket`` header.

How an interaction's list merges is rule 4 of :mod:`consumer.engine.lifecycle`; which stall
rules run in which list is :mod:`consumer.engine.stalls`'s.
"""

from __future__ import annotations

from typing import Final

# The API's five lists, in the order an interaction passes through them, numbered from 1
# in that order: a callback waits in scheduled until its time, then pending for a free
# agent, then previewing, proceeding (dialing) and interacting (connected).
LISTS: Final = ("scheduled", "pending", "previewing", "proceeding", "interacting")
NO_LIST: Final = 0  # the record named no list this release knows
SCHEDULED: Final = 1
PENDING: Final = 2
# the header carries bytes, a kcat -J dump text: both spellings of each name
_LIST_NUMBERS: Final[dict[str | bytes, int]] = {
    **{name: number for number, name in enumerate(LISTS, start=1)},
    **{name.encode(): number for number, name in enumerate(LISTS, start=1)},
}


def list_number(name: str | bytes) -> int:
    """The number of the list ``name`` (a ``genesys.bucket`` value); :data:`NO_LIST` if unknown."""
    return _LIST_NUMBERS.get(name, NO_LIST)


def list_name(number: int) -> str | None:
    """The name of list ``number``; ``None`` for :data:`NO_LIST`."""
    return LISTS[number - 1] if number != NO_LIST else None
