"""Decoding: every tolerance the producers need, and a clear reason for everything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.engine.model import (
    FIRST_EPOCH,
    INVALID_REASONS,
    LAST_EPOCH,
    Invalid,
    decode,
    decode_interaction,
    decode_record,
    engine_error,
    iso,
)
from consumer.engine.snapshot import Snapshot, Tombstone
from consumer.engine.stages import Stage

PERSONAL = ("+15551234567", "+15557654321", "Jane Customer", "Outbound Sales Line")


def full_camel() -> dict[str, Any]:
    """A snapshot with every documented field, in the API's camelCase."""
    return {
        "id": "i-1",
        "campaign": {"id": "c-1", "name": "Winter", "selfUri": "/c/1"},
        "agent": {"id": "a-1", "name": "Agent One"},
        "contact": {"id": "k-1", "name": "Jane Customer"},
        "destinationAddress": "+15551234567",
        "activePreviewCall": True,
        "lastActivePreviewWrapupTime": "2026-11-25T10:05:00.000Z",
        "creationTime": "2026-11-25T10:00:00.000Z",
        "callPlacedTime": "2026-11-25T10:06:00.000Z",
        "callRoutedTime": "2026-11-25T10:06:02.000Z",
        "previewConnectedTime": "2026-11-25T10:06:05.000Z",
        "queue": {"id": "q-1"},
        "script": {"id": "s-1"},
        "disposition": "disposition.classification.callable.person",
        "callerName": "Outbound Sales Line",
        "callerAddress": "+15557654321",
        "previewPopDeliveredTime": "2026-11-25T10:00:01.000Z",
        "conversation": {
            "id": "conv-1",
            "startTime": "2026-11-25T10:06:00Z",
            "endTime": "2026-11-25T10:09:00Z",
            "participants": [{"id": "p-1", "purpose": "dialer.system", "endTime": None}],
        },
        "dialerSystemParticipantId": "p-1",
        "dialingMode": "PREVIEW",
        "skills": [{"id": "sk-1"}],
    }


def to_snake(value: Any) -> Any:
    """The same document as the old Ruby SDK would spell it."""
    if isinstance(value, dict):
        snake = {}
        for key, inner in value.items():
            name = "".join("_" + c.lower() if c.isupper() else c for c in key)
            snake[name] = to_snake(inner)
        return snake
    if isinstance(value, list):
        return [to_snake(v) for v in value]
    return value


def decoded(document: Any) -> Snapshot:
    """Decode a JSON document that must be a valid snapshot."""
    result = decode(json.dumps(document).encode())
    assert isinstance(result, Snapshot), result
    return result


def invalid(raw: bytes) -> Invalid:
    """Decode bytes that must be invalid."""
    result = decode(raw)
    assert isinstance(result, Invalid), result
    return result


def test_camel_and_snake_case_decode_to_the_same_snapshot() -> None:
    """The API's camelCase and the old SDK's snake_case give identical snapshots."""
    camel, snake = decoded(full_camel()), decoded(to_snake(full_camel()))
    assert camel == snake
    assert camel.interaction_id == "i-1"
    assert (camel.campaign_id, camel.campaign_name, camel.agent_id) == ("c-1", "Winter", "a-1")
    assert camel.queue_id == "q-1"
    assert camel.active is True
    assert camel.times[Stage.PLACED] == 1795601160.0
    assert camel.conversation_ended == 1795601340.0  # the nested endTime, in both spellings


def test_every_field_absent_or_null() -> None:
    """Only the id is needed; every other field may be missing or null."""
    bare = decoded({"id": "i-1"})
    nulls = decoded({key: None for key in full_camel()} | {"id": "i-1"})
    assert bare == nulls == Snapshot("i-1")


def test_unknown_fields_are_ignored_anywhere() -> None:
    """New fields at the top, in references and in the conversation do not matter."""
    document = full_camel()
    document["brandNewField"] = {"deep": [1, 2, {"x": None}]}
    document["campaign"]["division"] = {"id": "d-1"}
    document["conversation"]["recordingState"] = "ACTIVE"
    document["conversation"]["participants"][0]["wrapup"] = {"code": "x"}
    assert decoded(document) == decoded(full_camel())


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-25T10:00:00Z", 1795600800.0),
        ("2026-11-25T10:00:00.250Z", 1795600800.25),
        ("2026-11-25T10:00:00.123456Z", 1795600800.123456),
        ("2026-11-25T10:00:00+00:00", 1795600800.0),
        ("2026-11-25T12:00:00+02:00", 1795600800.0),
        ("2026-11-25T10:00:00", 1795600800.0),  # no offset: taken as UTC
    ],
)
def test_date_time_forms(text: str, epoch: float) -> None:
    """Date-times with or without fractions, Z, offsets or none all land on the same instant."""
    assert decoded({"id": "i", "creationTime": text}).times[Stage.CREATED] == pytest.approx(epoch)


@pytest.mark.parametrize("mode", ["PREVIEW", "preview", "Preview", "pReViEw"])
def test_dialing_mode_is_lowercased(mode: str) -> None:
    """Any letter case of dialingMode normalises to lowercase."""
    assert decoded({"id": "i", "dialingMode": mode}).dialing_mode == "preview"


@pytest.mark.parametrize(
    "disposition",
    ["FAX", "LIVE_VOICE", "disposition.classification.callable.noanswer", "新", 7, {"a": [1]}],
)
def test_any_disposition_is_accepted(disposition: object) -> None:
    """An unexpected disposition, of any value or type, never fails a record (not decoded)."""
    decoded({"id": "i", "disposition": disposition, "conversation": {"id": 5}})


def test_personal_data_is_never_decoded() -> None:
    """Phone numbers and names are not even in the decoded wire struct, in either spelling."""
    for document in (full_camel(), to_snake(full_camel())):
        record = decode_interaction(json.dumps(document))
        assert not isinstance(record, Invalid), record
        for text in (repr(record), repr(decoded(document))):
            for secret in PERSONAL:
                assert secret not in text


@pytest.mark.parametrize(
    "extra",
    [
        {"skills": [None, {"id": "sk-1"}, None]},
        {"skills": {"id": "not a list"}},
        {"conversation": {"id": "conv-1", "participants": [None, 3, "x"]}},
        {"conversation": {"participants": {"purpose": 1}, "startTime": "not a time"}},
        {"destinationAddress": 15551234567},
        {"callerAddress": ["+1555"], "callerName": {"first": "Jane"}},
        {"contact": "k-1", "script": 7, "dialerSystemParticipantId": False},
        {"campaign": {"id": "c-1", "selfUri": 5}, "agent": {"id": "a-1", "name": 9}},
        {"queue": {"id": "q-1", "name": ["Queue"]}},
        {"destination_address": 1, "caller_name": None, "skills": [[None]]},
    ],
)
def test_fields_the_engine_does_not_use_cannot_make_a_record_invalid(
    extra: dict[str, Any],
) -> None:
    """Nulls in arrays and wrongly typed unused fields are ignored: unknown to the decoder."""
    document = {
        "id": "i-1",
        "campaign": {"id": "c-1"},
        "agent": {"id": "a-1"},
        "creationTime": "2026-11-25T10:00:00.000Z",
    }
    snapshot = decoded(document | extra)
    assert (snapshot.interaction_id, snapshot.campaign_id, snapshot.agent_id) == (
        "i-1",
        "c-1",
        "a-1",
    )


def test_mixed_spellings_keep_every_field() -> None:
    """A record mixing camelCase and snake_case keys loses no field of either spelling."""
    camel = full_camel()
    mixed = {
        key if index % 2 else to_snake({key: None}).popitem()[0]: value
        for index, (key, value) in enumerate(camel.items())
    }
    mixed["conversation"] = {"id": "conv-1", "end_time": "2026-11-25T10:09:00Z"}
    assert set(mixed) != set(camel)  # both spellings are really present
    assert set(mixed) != set(to_snake(camel))
    assert decoded(mixed) == decoded(camel)


def test_camel_case_wins_where_both_spellings_are_present() -> None:
    """Where a field comes in both spellings, the camelCase value is the one kept."""
    snapshot = decoded(
        {
            "id": "i-1",
            "creation_time": "2026-11-25T11:00:00Z",
            "creationTime": "2026-11-25T10:00:00Z",
            "dialingMode": "PREVIEW",
            "dialing_mode": "power",
            "active_preview_call": False,
            "activePreviewCall": True,
            "conversation": {"end_time": "2026-11-25T12:00:00Z", "endTime": "2026-11-25T10:09:00Z"},
            "call_placed_time": "2026-11-25T10:06:00Z",
            "callPlacedTime": None,  # null is absent: the other spelling's value stands
        }
    )
    assert snapshot.times[Stage.CREATED] == 1795600800.0
    assert snapshot.dialing_mode == "preview"
    assert snapshot.active is True
    assert snapshot.conversation_ended == 1795601340.0
    assert snapshot.times[Stage.PLACED] == 1795601160.0


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("creationTime", "0001-01-01T00:00:00+05:30"),
        ("previewPopDeliveredTime", "9999-12-31T23:59:59-05:00"),
        ("call_placed_time", "0001-01-01T05:29:59.999+05:30"),
        ("lastActivePreviewWrapupTime", "9999-12-31T23:59:59.999-00:01"),
        ("conversation.endTime", "0001-01-01T00:00:00+00:01"),
        ("conversation.end_time", "9999-12-31T20:00:00-23:59"),
    ],
)
def test_times_outside_years_1_to_9999_in_utc_are_invalid_fields(field: str, text: str) -> None:
    """A date-time whose UTC value falls before year 1 or after 9999 is invalid, and named."""
    parent, _, name = field.rpartition(".")
    document: dict[str, Any] = {"id": "i-1", "creationTime": "2026-11-25T10:00:00Z"}
    if parent:
        document[parent] = {name: text}
    else:
        document[name] = text
    result = invalid(json.dumps(document).encode())
    assert result.reason == "invalid_field"
    assert f"`$.{field}`" in result.detail
    assert "years 1-9999" in result.detail


def test_only_the_time_in_use_is_checked_for_range() -> None:
    """An out-of-range snake_case twin of a camelCase time is unused; the one used is named."""
    out = "0001-01-01T00:00:00+05:30"
    kept = decoded({"id": "i", "creationTime": "2026-11-25T10:00:00Z", "creation_time": out})
    assert kept.times[Stage.CREATED] == 1795600800.0
    document = {
        "id": "i",
        "creationTime": "2026-11-25T10:00:00Z",
        "creation_time": out,  # unused: camelCase wins
        "call_placed_time": out,  # used, and out of range
    }
    result = invalid(json.dumps(document).encode())
    assert "`$.call_placed_time`" in result.detail


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("0001-01-01T05:30:00+05:30", "0001-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T18:59:59-05:00", "9999-12-31T23:59:59.000Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"),
    ],
)
def test_times_at_the_edges_of_the_range_decode_and_format(text: str, formatted: str) -> None:
    """The first and last instants of years 1-9999 (UTC) decode, and iso() formats them."""
    moment = decoded({"id": "i", "creationTime": text}).times[Stage.CREATED]
    assert moment is not None
    assert FIRST_EPOCH <= moment <= LAST_EPOCH
    assert iso(moment) == formatted


@pytest.mark.parametrize("fraction", ["", ".1", ".12", ".123456", ".123999", ".1230", ".123000"])
def test_times_are_kept_to_the_millisecond(fraction: str) -> None:
    """Digits below the millisecond are dropped: ``.123`` and ``.123456`` are one instant."""
    base = "2026-11-25T10:00:00"
    expected = decoded({"id": "i", "creationTime": f"{base}{fraction[:4]}Z"})
    for offset in ("Z", "+00:00", ""):
        got = decoded({"id": "i", "callPlacedTime": f"{base}{fraction}{offset}"})
        assert got.times[Stage.PLACED] == expected.times[Stage.CREATED]


def test_engine_error_is_a_known_reason_with_a_one_line_detail() -> None:
    """An exception becomes an ``engine_error`` Invalid: its type and the first message line."""
    assert "engine_error" in INVALID_REASONS
    result = engine_error(ValueError("year 0 is out of range\nsecond line" + "x" * 500))
    assert result.reason == "engine_error"
    assert result.detail == "ValueError: year 0 is out of range"
    long = engine_error(KeyError("k" * 500))
    assert len(long.detail) < 250


@pytest.mark.parametrize(
    ("raw", "reason", "names"),
    [
        (b"\xff\xfe{}", "not_utf8", "byte 0"),
        (b'{"id": "\xc3\x28"}', "not_utf8", "byte"),
        (b"not json", "not_json", "malformed"),
        (b'{"id": "i"', "not_json", "truncated"),
        (b"[1, 2]", "not_object", "array"),
        (b'"a string"', "not_object", "str"),
        (b"42", "not_object", "int"),
        (b'{"id": 5}', "invalid_field", "$.id"),
        (b'{"id": "i", "campaign": "c"}', "invalid_field", "$.campaign"),
        (b'{"id": "i", "campaign": {"id": 7}}', "invalid_field", "$.campaign.id"),
        (b'{"id": "i", "activePreviewCall": "yes"}', "invalid_field", "$.activePreviewCall"),
        (b'{"id": "i", "creationTime": 12345}', "invalid_field", "$.creationTime"),
        (b'{"id": "i", "creationTime": "yesterday"}', "invalid_field", "$.creationTime"),
        (b'{"id": "i", "call_placed_time": "soon"}', "invalid_field", "$.call_placed_time"),
        (b'{"id": "i", "conversation": {"end_time": 3}}', "invalid_field", "$.conversation"),
        (b'{"id": "i", "dialing_mode": 1}', "invalid_field", "$.dialing_mode"),
        (b"{}", "missing_id", "$.id"),
        (b"[" * 100_000 + b"]" * 100_000, "not_object", "array"),
        (b'{"id": "i", "x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001, "too_deep", "nested"),
        (b'{"id": ""}', "missing_id", "$.id"),
    ],
)
def test_invalid_input_has_a_one_line_reason_naming_the_field(
    raw: bytes, reason: str, names: str
) -> None:
    """Bad bytes and bad shapes are Invalid with a fixed reason and a one-line detail."""
    result = invalid(raw)
    assert result.reason == reason
    assert names in result.detail
    assert "\n" not in result.detail


def test_text_with_a_lone_surrogate_is_invalid_not_an_exception() -> None:
    """A value handed over as str with no UTF-8 form (lone surrogate) is ``not_utf8``."""
    for text in ('{"id": "\ud800"}', '{"id": "i", "x": "\udfff"}'):
        result = decode_record("k", text)
        assert isinstance(result, Invalid)
        assert result.reason == "not_utf8"


def test_tombstones() -> None:
    """A null value with a key is a tombstone for that id; without a usable key, invalid."""
    assert decode_record(b"i-1", None) == Tombstone("i-1")
    assert decode_record("i-1", None) == Tombstone("i-1")
    no_key = decode_record(None, None)
    assert isinstance(no_key, Invalid)
    assert no_key.reason == "missing_id"
    bad_key = decode_record(b"\xff", None)
    assert isinstance(bad_key, Invalid)
    assert bad_key.reason == "not_utf8"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(sorted({*full_camel(), *to_snake(full_camel())}))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Any bytes at all decode to a snapshot, a tombstone or an Invalid, never an exception."""
    assert isinstance(decode_record(raw, raw), Snapshot | Tombstone | Invalid)


# generation, not the code under test, is what is slow here on a loaded 2-core machine
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_values, max_size=8))
def test_real_field_names_with_random_values_never_raise(document: dict[str, Any]) -> None:
    """Known field names holding arbitrary JSON values decode or are Invalid, never raise."""
    result = decode(json.dumps(document).encode())
    assert isinstance(result, Snapshot | Invalid)
