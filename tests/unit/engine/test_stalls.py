"""The alert record and the stall policy."""

from __future__ import annotations

import msgspec
import pytest

from consumer.engine.stalls import DEFAULT_THRESHOLDS, RULES, StallPolicy
from consumer.formats.alerts import encode_alert, to_alert
from tests.unit.factory import T0, snap, tracker

REQUIRED = {
    "status",
    "alertId",
    "interactionId",
    "campaignId",
    "agentId",
    "queueId",
    "dialingMode",
    "stage",
    "stageEnteredAt",
    "thresholdSeconds",
    "stalledForSeconds",
    "observedAt",
}


def test_alert_record_has_the_documented_fields() -> None:
    """A firing alert serialises to one JSON object with every required field filled."""
    t = tracker()
    t.ingest(snap(created=0, previewing=1.5), T0 + 2)
    (event,) = t.tick(T0 + 302)
    alert = to_alert(event)
    record = msgspec.json.decode(encode_alert(alert))
    assert set(record) >= REQUIRED
    assert record["status"] == "firing"
    assert record["interactionId"] == "i-1"
    assert (record["campaignId"], record["agentId"], record["queueId"]) == ("c-1", "a-1", "q-1")
    assert record["dialingMode"] == "preview"
    assert record["stage"] == "previewing"
    assert record["stageEnteredAt"] == "2026-11-25T09:46:41.500Z"
    assert record["thresholdSeconds"] == 300
    assert record["stalledForSeconds"] == 300.5
    assert record["observedAt"] == "2026-11-25T09:51:42.000Z"
    assert b"\n" not in encode_alert(alert)


def test_alert_id_is_stable_for_the_same_stall() -> None:
    """Two trackers seeing the same stall name it with the same alertId; another stall differs."""
    ids = []
    for _ in range(2):
        t = tracker()
        t.ingest(snap(created=0, previewing=1), T0 + 1)
        ids.append(to_alert(t.tick(T0 + 400)[0]).alert_id)
    t = tracker()
    t.ingest(snap(created=0, previewing=2), T0 + 2)
    other = to_alert(t.tick(T0 + 400)[0]).alert_id
    assert ids[0] == ids[1] != other


def test_every_stage_has_a_documented_default() -> None:
    """Each rule has a positive default threshold."""
    assert set(DEFAULT_THRESHOLDS) == set(RULES)
    assert all(v > 0 for v in DEFAULT_THRESHOLDS.values())


def test_unknown_rule_is_rejected() -> None:
    """A threshold for a rule that does not exist is an error, not silently ignored."""
    with pytest.raises(ValueError, match="bogus"):
        StallPolicy({"bogus": 1})
    with pytest.raises(ValueError, match="nope"):
        StallPolicy(campaigns={"c": {"nope": 1}})


def test_thresholds_from_campaign_settings_rank_below_explicit_ones() -> None:
    """A campaign's derived previewing threshold beats the defaults, never its explicit one."""
    policy = StallPolicy({"previewing": 300}, {"explicit": {"previewing": 900}})
    assert policy.derive_previewing("auto", 40.0)
    assert policy.threshold("auto", "previewing") == 40
    assert policy.threshold("auto", "placed") == DEFAULT_THRESHOLDS["placed"]
    assert not policy.derive_previewing("explicit", 40.0)
    assert policy.threshold("explicit", "previewing") == 900
    assert not policy.derive_previewing("auto", 40.0)  # no change, nothing to re-time
    assert policy.derive_previewing("auto", None)  # the campaign stopped auto-placing
    assert policy.threshold("auto", "previewing") == 300
