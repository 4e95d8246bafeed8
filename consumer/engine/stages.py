"""The lifecycle's stages, and how the time an interaction entered each is held.

Stages, in order::

    created -> previewing -> placed -> routed -> connected -> wrapped_up
    (creationTime) (previewPopDeliveredTime) (callPlacedTime) (callRoutedTime)
                                  (previewConnectedTime) (lastActivePreviewWrapupTime)

Which stage an interaction is in is derived from these times by the rules of
:mod:`consumer.engine.lifecycle`.

How the times are held: the snapshot and interaction classes are compiled by mypyc
(``setup.py``) into native ones whose times are plain C doubles, not float objects. A time
no snapshot gave is :data:`UNKNOWN`, minus infinity, below every real time: merging a time
is then ``max`` alone, and a comparison with an unknown time is simply false. The ``at_*``
fields hold that form; the public properties (``created``, ``times``,
``conversation_ended``...) say ``None`` instead, as the rest of the code and the tests
expect.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Stage(IntEnum):
    """Lifecycle stages, ordered; the value indexes the ``times`` of a snapshot."""

    CREATED = 0
    PREVIEWING = 1
    PLACED = 2
    ROUTED = 3
    CONNECTED = 4
    WRAPPED_UP = 5

    @property
    def label(self) -> str:
        """The stage's name in metrics, alerts and configuration."""
        return LABELS[self]


STAGES: Final = tuple(Stage)
# each stage's label, indexed by stage: the hot path reads it without Enum machinery
LABELS: Final = tuple(stage.name.lower() for stage in STAGES)

# The stages as plain ints: compiled code compares these natively, an IntEnum it cannot.
CREATED: Final = 0
PREVIEWING: Final = 1
PLACED: Final = 2
ROUTED: Final = 3
CONNECTED: Final = 4
WRAPPED_UP: Final = 5

UNKNOWN: Final = float("-inf")  # a time no snapshot gave: below every real one


def or_unknown(moment: float | None) -> float:
    """``moment`` as held: :data:`UNKNOWN` for ``None``."""
    return UNKNOWN if moment is None else moment


def or_none(moment: float) -> float | None:
    """A held ``moment`` as the public properties say it: ``None`` for :data:`UNKNOWN`."""
    return None if moment == UNKNOWN else moment


def newest(a: float, b: float, c: float, d: float, e: float, f: float, ended: float) -> float:
    """The newest of the six stage times and the conversation's end: a version; 0 if none."""
    latest = 0.0 if ended == UNKNOWN else ended
    # straight-line: compiled, these are C doubles, and a loop would box them into a tuple
    if a > latest:
        latest = a
    if b > latest:
        latest = b
    if c > latest:
        latest = c
    if d > latest:
        latest = d
    if e > latest:
        latest = e
    if f > latest:
        latest = f
    return latest
