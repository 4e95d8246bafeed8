"""Campaign settings records and the previewing threshold a campaign's timeout implies."""

from __future__ import annotations

import math

import pytest

from consumer.formats.campaigns import (
    Campaign,
    UnreadableError,
    decode,
    encode,
    previewing_threshold,
    read,
    topic_for,
)
from consumer.settings.load import load_settings


def test_record_round_trips_in_the_api_spelling() -> None:
    """A record is camelCase JSON that decodes back to the same campaign."""
    campaign = Campaign("c-1", "Renewals", "preview", "on", 60, False)
    value = encode(campaign)
    assert value == (
        b'{"id":"c-1","name":"Renewals","dialingMode":"preview","campaignStatus":"on",'
        b'"previewTimeOutSeconds":60,"previewAutoEnd":false}'
    )
    assert decode(value) == campaign


def test_api_campaign_decodes_ignoring_other_fields() -> None:
    """The Platform API's Campaign object, with its many other fields, decodes to a record."""
    api = b'{"id":"c-2","name":"X","dialingMode":"PREVIEW","queue":{"id":"q"},"priority":5}'
    campaign = decode(api)
    assert campaign == Campaign("c-2", "X", "PREVIEW")
    assert campaign is not None
    assert campaign.is_preview


@pytest.mark.parametrize("value", [None, b"not json", b'{"name":"no id"}', b"[]"])
def test_unreadable_records_are_none(value: bytes | None) -> None:
    """A tombstone or a value that is not a campaign decodes to None, never raises."""
    assert decode(value) is None


@pytest.mark.parametrize(
    ("timeout", "expected"), [(None, None), (0, None), (45, 75.0), (0.5, 30.5)]
)
def test_previewing_threshold_is_timeout_plus_grace(
    timeout: float | None, expected: float | None
) -> None:
    """A campaign that auto-places gets timeout + grace; one that never does gets none."""
    campaign = Campaign("c", preview_time_out_seconds=timeout)
    assert previewing_threshold(campaign, 30) == expected


def test_grace_setting_defaults_to_30_and_is_validated() -> None:
    """stalls.preview_timeout_grace_seconds is 30 by default and may not be negative."""
    from consumer.settings.schema import ConfigError

    assert load_settings().stalls.preview_timeout_grace_seconds == 30
    with pytest.raises(ConfigError, match=r"stalls\.preview_timeout_grace_seconds"):
        load_settings(overrides={"stalls": {"preview_timeout_grace_seconds": -1}})


def test_campaigns_topic_is_named_after_the_input() -> None:
    """The campaigns topic is <topic>.campaigns."""
    assert topic_for("campaign-interactions") == "campaign-interactions.campaigns"


def test_a_preview_timeout_no_campaign_means_is_ignored() -> None:
    """A time-out beyond a day (or negative) sets no threshold: the configured ones apply."""
    for timeout in (86400.0 + 1, 1e308, -5.0):
        campaign = Campaign("c-1", preview_time_out_seconds=timeout)
        assert previewing_threshold(campaign, 30.0) is None
    day = Campaign("c-1", preview_time_out_seconds=86400.0)
    assert previewing_threshold(day, 30.0) == 86430.0


def test_a_record_nested_too_deep_is_unreadable_not_a_crash() -> None:
    """read() names a value nested past the decoder too_deep; decode() gives None."""
    deep = b'{"id":"c-1","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(UnreadableError) as raised:
        read(deep)
    assert raised.value.reason == "too_deep"
    assert decode(deep) is None
    with pytest.raises(UnreadableError, match="unreadable"):
        read(b"not json")


@pytest.mark.parametrize("grace", [math.inf, math.nan])
def test_a_grace_that_is_not_finite_derives_no_threshold(grace: float) -> None:
    """Should an inf/NaN grace get past the settings, the configured thresholds apply."""
    campaign = Campaign("c-1", preview_time_out_seconds=60)
    assert previewing_threshold(campaign, grace) is None
