"""Stall rules and thresholds: which stall is running on an interaction. Pure.

An interaction is *watched* when its dialing mode is ``preview`` or a preview call is
known to be active on it (``watch_all_modes`` extends this to every mode). A watched
interaction has at most one stall rule running at any moment:

* ``conversation_ended``: the conversation of its current call ended but
  ``activePreviewCall`` is still true and nobody wrapped it up. Measured from the
  conversation's end: a preview left open after the call is over.
* otherwise the rule named after its stage (``created``, ``previewing``, ``placed``,
  ``routed``, ``connected``, ``wrapped_up``), measured from the stage's entry time as the
  snapshots state it. ``wrapped_up`` only runs while the preview is still active, since
  a wrapped-up, inactive interaction has ended.

The list the interaction is in (``genesys.bucket``, :mod:`consumer.engine.lifecycle`
rule 4) comes first: in ``scheduled`` (a callback held until its time) and ``pending``
(waiting for a free agent or line) no rule runs at all. Neither list holds a preview or a
call, so nothing there can stall: a scheduled callback waits by design, and a long pending
wait is a staffing shortfall, shown per campaign by the ``dialer_pending_interactions``
gauge and its own alert, not a page per interaction. When the interaction leaves them
and is popped, the ``previewing`` rule runs from the pop's own time. A record that named
no list (a producer other than the poller) keeps the rules above; since for it a
scheduled callback looks exactly like a preview never delivered, ``created`` can be
switched off for such interactions alone (``created_without_bucket``).

The rule fires once its threshold has passed (see :mod:`consumer.engine.alerting` for
what happens then). A threshold of 0 switches that rule off. A stall is identified by its
interaction, rule and start time: the same stall always gets the same alert id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, final

from mypy_extensions import mypyc_attr

from consumer.engine.interaction import Interaction, time_of
from consumer.engine.lifecycle import conversation_over
from consumer.engine.lists import NO_LIST, PENDING, SCHEDULED
from consumer.engine.stages import CREATED, LABELS, STAGES, UNKNOWN, WRAPPED_UP, Stage

CONVERSATION_ENDED: Final = "conversation_ended"
RULES: Final = (*(stage.label for stage in STAGES), CONVERSATION_ENDED)

# Defaults, chosen from the domain brief (see docs/design/tracking.md, "Stalls"), in seconds.
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {
    "created": 120.0,  # the dialer pops a preview right after creating the interaction
    "previewing": 300.0,  # agent think time; preview time-outs are usually well below this
    "placed": 60.0,  # routing a placed call to the agent takes seconds
    "routed": 90.0,  # the customer's phone rings for about a minute at most
    "connected": 3600.0,  # an hour-long preview call is worth a look
    "wrapped_up": 60.0,  # wrap-up should close the preview at once
    CONVERSATION_ENDED: 300.0,  # after-call work, then wrap-up should close it
}


def unknown_rules(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are no stall rule, sorted (the one place they are checked)."""
    return sorted(set(names) - set(RULES))


@final
@mypyc_attr(acyclic=True)
class Stall:
    """The stall rule running on one interaction: which rule, since when, how long allowed."""

    def __init__(
        self, rule: str, stage: Stage, entered: float | None, since: float, threshold: float
    ) -> None:
        self.rule = rule
        self.stage = stage
        self.entered = entered  # when the interaction entered ``stage``
        self.since = since  # when the rule started counting
        self.threshold = threshold

    @property
    def due(self) -> float:
        """The moment the stall fires if nothing moves."""
        return self.since + self.threshold

    def same(self, other: Stall | None) -> bool:
        """``other`` is this very stall (same rule and start): the alert ids are equal."""
        return other is not None and self.rule == other.rule and self.since == other.since

    def _fields(self) -> tuple[object, ...]:
        return (self.rule, self.stage, self.entered, self.since, self.threshold)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stall) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return "Stall(%r, %s, %r, %r, %r)" % self._fields()  # noqa: UP031 - one tuple


class StallPolicy:
    """Thresholds per rule with per-campaign overrides, and which interactions are watched."""

    def __init__(
        self,
        thresholds: Mapping[str, float] | None = None,
        campaigns: Mapping[str, Mapping[str, float]] | None = None,
        *,
        watch_all_modes: bool = False,
        created_without_bucket: bool = True,
    ) -> None:
        for rules in (thresholds or {}, *(campaigns or {}).values()):
            unknown = unknown_rules(rules)
            if unknown:
                raise ValueError(f"unknown stall rule(s): {', '.join(unknown)}")
        self.defaults = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self._overrides = {campaign: dict(rules) for campaign, rules in (campaigns or {}).items()}
        # every campaign whose thresholds differ from the defaults, each rule filled in
        self.campaigns = {
            campaign: {**self.defaults, **overrides}
            for campaign, overrides in self._overrides.items()
        }
        self.watch_all_modes = watch_all_modes
        # the created rule runs for interactions no record placed in a list
        self.created_without_bucket = created_without_bucket

    def derive_previewing(self, campaign_id: str, seconds: float | None) -> bool:
        """A campaign's own settings imply its ``previewing`` threshold (``None``: they don't).

        Precedence, highest first: the campaign's explicit threshold in the settings, this
        derived one, the configured thresholds, the defaults. Returns whether the
        campaign's thresholds changed (stall timers then need re-timing).
        """
        overrides = self._overrides.get(campaign_id, {})
        if "previewing" in overrides:
            return False  # explicit settings win
        table = {**self.defaults, **overrides}
        if seconds is not None:
            table["previewing"] = seconds
        if table == self.campaigns.get(campaign_id, self.defaults):
            return False
        if table == self.defaults:
            del self.campaigns[campaign_id]
        else:
            self.campaigns[campaign_id] = table
        return True

    def threshold(self, campaign_id: str | None, rule: str) -> float:
        """Seconds allowed for ``rule`` in this campaign; 0 means never stalls."""
        table = self.campaigns.get(campaign_id, self.defaults) if campaign_id else self.defaults
        return table[rule]

    def watched(self, state: Interaction) -> bool:
        """Stalls are judged for this interaction."""
        # inlined Interaction.active and dialing_mode: this runs for every record
        return self.watch_all_modes or state.closed is False or state.mode == "preview"

    def stall(self, state: Interaction) -> Stall | None:
        """The stall rule running on ``state`` now, or ``None`` when none can fire."""
        if not self.watched(state):
            return None
        held = state.bucket
        if held in (SCHEDULED, PENDING):
            return None  # no preview, no call: nothing to stall (see the module's docstring)
        number = state.stage_number
        entered = time_of(state, number)
        if state.closed is False and number != WRAPPED_UP and conversation_over(state):
            rule, since = CONVERSATION_ENDED, state.at_ended
        else:
            rule, since = LABELS[number], entered
            if number == CREATED and held == NO_LIST and not self.created_without_bucket:
                return None
        if since == UNKNOWN:
            return None  # no time to measure from: the snapshots never said when
        threshold = self.threshold(state.campaign, rule)
        if not threshold > 0:
            return None
        known = None if entered == UNKNOWN else entered
        return Stall(rule, STAGES[number], known, since, threshold)
