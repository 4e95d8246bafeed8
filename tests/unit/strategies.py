"""Hypothesis strategies that generate ``CampaignInteraction`` records by meaning.

Byte fuzzing finds little past the JSON parser: nearly every random input is ``not_json``.
These strategies build records the way producers (and bad producers) write them, so that
generated input reaches every rule after the parser:

* :func:`moments`: date-times in every form the wire allows (fraction of 0 to 9 digits,
  ``Z``, ``z``, an offset of up to +-23:59 or none, ``T``, ``t`` or a space) over the whole
  of years 1-9999, biased to the edges, some of which fall outside years 1-9999 once
  taken to UTC; plus texts that are no date-time at all. Each comes with the instant it
  means (:class:`Moment`), the oracle for what decoding must make of it;
* :func:`json_values`: every JSON type: nulls, booleans, huge and negative integers,
  floats, empty and huge strings, arrays holding nulls, nested objects;
* :func:`snapshot_members`: the members of one snapshot object, each field the engine
  uses written in camelCase, snake_case or both, mostly well typed and sometimes any
  JSON value; personal data and unknown fields of any type; keys repeated;
* :func:`render`: members to the JSON object text, keeping repeated keys;
* :func:`records`: Kafka-shaped ``(key, value)`` pairs: snapshots of a small pool of
  interactions with times near one moment (so that merges, stage changes and stalls
  happen when a tracker is driven with them), tombstones with and without a key, JSON
  that is not an object, and bytes that are not JSON or not UTF-8.

Reuse them to drive anything downstream of decoding (tracker, alert encoding, the
changelog): ``records(ids=..., near=...)`` gives sequences in which the same
interactions come back.
"""

from __future__ import annotations

import calendar
import functools
import json
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from hypothesis import strategies as st

from consumer.engine.model import WIRE_TIMES

# the instant every ``near`` defaults to: 2026-11-25T09:46:40Z, as in tests.unit.factory
BASE: Final = 1_795_600_000.0
_UNIX: Final = datetime(1970, 1, 1)
_ORDINAL_1970: Final = _UNIX.toordinal()
FIRST_MS: Final = (datetime(1, 1, 1).toordinal() - _ORDINAL_1970) * 86_400_000
LAST_MS: Final = (datetime(9999, 12, 31).toordinal() - _ORDINAL_1970 + 1) * 86_400_000 - 1

MODES: Final = ("preview", "power", "predictive", "progressive", "agentless", "external")
PERSONAL: Final = ("destinationAddress", "callerAddress", "callerName")
UNUSED: Final = ("contact", "script", "skills", "dialerSystemParticipantId", "selfUri")


def snake(name: str) -> str:
    """The old Ruby SDK's spelling of a camelCase key."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


class Moment(NamedTuple):
    """A generated date-time text and the instant it means, in epoch milliseconds (UTC).

    ``utc_ms`` is ``None`` for a text that is no date-time. ``exact`` is false when the
    fraction has more than 6 digits: the decoder rounds those to the microsecond first,
    which may carry into the next millisecond.
    """

    text: str
    utc_ms: int | None
    exact: bool = True

    @property
    def in_range(self) -> bool:
        """The instant lies within years 1-9999 in UTC (what decoding accepts)."""
        return self.utc_ms is not None and FIRST_MS <= self.utc_ms <= LAST_MS


_EDGE_YEARS: Final = st.sampled_from([1, 2, 1969, 1970, 2026, 2038, 9998, 9999])
_NOT_DATES: Final = st.sampled_from(
    [
        "",
        "yesterday",
        "2026-02-29T10:00:00Z",  # no such day
        "2026-11-25T24:00:00Z",
        "2026-11-25T10:00Z",  # no seconds
        "2026-11-25",
        "10:00:00",
        "2026-11-25T10:00:00+24:00",
        "2026-11-25T10:00:00.Z",
        " 2026-11-25T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2026-11-25T10:00:00\x00Z",
    ]
)


_UTC_FORMS: Final = st.sampled_from(["Z", "z", "", "+00:00", "-00:00"])


def _offset_text(draw: st.DrawFn, minutes: int) -> str:
    """How an offset of ``minutes`` east of UTC is written (0 has several forms)."""
    if minutes == 0:
        return draw(_UTC_FORMS)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# Strategies are built once: Hypothesis pays for building one (recursion checks, caches)
# on every draw that builds it anew, and that was most of the time of a fuzz test.
_OFFSETS: Final = st.sampled_from([0, 0, 0, 60, -300, 330, 1439, -1439]) | st.integers(-1439, 1439)
_NEAR_SPAN: Final = st.integers(-4 * 3_600_000, 4 * 3_600_000)
_SUB_MS: Final = st.sampled_from(["", "", "000", "456"])
_YEARS: Final = _EDGE_YEARS | st.integers(1, 9999)
_MONTHS: Final = st.sampled_from([1, 12]) | st.integers(1, 12)
_HOURS: Final = st.sampled_from([0, 23]) | st.integers(0, 23)
_SIXTY: Final = st.sampled_from([0, 59]) | st.integers(0, 59)
_DIGITS: Final = st.text("0123456789", max_size=9) | st.sampled_from(["999", "999999"])
_SEPARATORS: Final = st.sampled_from("TTTt ")


@st.composite
def _date_time(draw: st.DrawFn, near: float | None) -> Moment:
    offset = draw(_OFFSETS)
    if near is not None:
        # realistic: within a few hours of ``near``, on the dialer's millisecond grid, the
        # local time written for the offset drawn (sometimes with digits below the ms)
        utc_ms = round(near * 1000) + draw(_NEAR_SPAN)
        local = _UNIX + timedelta(milliseconds=utc_ms + offset * 60_000)
        year, month, day = local.year, local.month, local.day
        hour, minute, second = local.hour, local.minute, local.second
        digits = f"{local.microsecond // 1000:03d}" + draw(_SUB_MS)
    else:
        year = draw(_YEARS)
        month = draw(_MONTHS)
        last = calendar.monthrange(year, month)[1]
        day = draw(st.sampled_from((1, last)) | st.integers(1, last))
        hour, minute, second = draw(_HOURS), draw(_SIXTY), draw(_SIXTY)
        digits = draw(_DIGITS)
    separator = draw(_SEPARATORS)
    fraction = f".{digits}" if digits else ""
    text = (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        f"{fraction}{_offset_text(draw, offset)}"
    )
    # the meaning, from the written parts alone
    days = datetime(year, month, day).toordinal() - _ORDINAL_1970
    local_ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000
    local_ms += int((digits + "000")[:3])
    return Moment(text, local_ms - offset * 60_000, exact=len(digits) <= 6)


@functools.cache
def moments(near: float | None = None) -> st.SearchStrategy[Moment]:
    """Date-times with their meaning; ``near``: mostly within hours of that epoch instant."""
    not_dates = _NOT_DATES.map(lambda text: Moment(text, None))
    if near is None:
        return _date_time(None) | not_dates
    # extremes stay in the mix: a realistic run must survive one bad producer too
    return st.one_of(_date_time(near), _date_time(near), _date_time(near), _date_time(None))


@functools.cache
def strings() -> st.SearchStrategy[str]:
    """Empty, ordinary, unusual and huge strings."""
    return st.one_of(
        st.just(""),
        st.text(max_size=20),
        st.sampled_from(["other", "none", "\u2028", "\ufeff", "新", "a\nb", "\x00"]),
        st.integers(65, 100_000).map(lambda n: "x" * n),
    )


@functools.cache
def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value: every type, nulls inside arrays, nesting, huge and empty strings."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 10**30]),
        st.floats(allow_nan=False, allow_infinity=False),
        strings(),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner | st.none(), max_size=4)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )


_ROLL: Final = st.integers(0, 7)


def _sometimes_anything(draw: st.DrawFn, good: st.SearchStrategy[Any]) -> Any:
    """Mostly a well-typed value, one time in eight any JSON value, one in eight null."""
    roll = draw(_ROLL)
    if roll == 0:
        return draw(json_values())
    if roll == 1:
        return None
    return draw(good)


_REF_EXTRAS: Final = st.sampled_from(["selfUri", "self_uri", "division"])


@functools.cache
def _ref(ids: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A ``DomainEntityRef`` with ids from ``ids``; any member may be missing or mistyped."""
    return _ref_of(ids)


@st.composite
def _ref_of(draw: st.DrawFn, ids: st.SearchStrategy[str]) -> dict[str, Any]:
    ref: dict[str, Any] = {}
    if draw(st.booleans()):
        ref["id"] = _sometimes_anything(draw, ids)
    if draw(st.booleans()):
        ref["name"] = _sometimes_anything(draw, strings())
    if draw(st.booleans()):
        ref[draw(_REF_EXTRAS)] = draw(json_values())
    return ref


@functools.cache
def _spellings(camel: str) -> st.SearchStrategy[list[str]]:
    """The keys one field is written under: camelCase, snake_case, or both in either order."""
    twin = snake(camel)
    return st.sampled_from([[camel], [twin], [camel, twin], [twin, camel]])


_PARTICIPANTS: Final = st.lists(
    st.none() | st.fixed_dictionaries({"id": strings(), "purpose": json_values()}) | json_values(),
    max_size=3,
)
_CONVERSATION_EXTRAS: Final = st.sampled_from(["startTime", "start_time", "recordingState"])


@functools.cache
def _conversation(near: float | None) -> st.SearchStrategy[dict[str, Any]]:
    """A conversation: id, end time in either spelling or both, participants with nulls."""
    return _conversation_of(near)


@st.composite
def _conversation_of(draw: st.DrawFn, near: float | None) -> dict[str, Any]:
    members: dict[str, Any] = {}
    if draw(st.booleans()):
        members["id"] = _sometimes_anything(draw, strings())
    for key in draw(_spellings("endTime")):
        members[key] = _sometimes_anything(draw, moments(near).map(lambda m: m.text))
    if draw(st.booleans()):
        members["participants"] = draw(_PARTICIPANTS)
    if draw(st.booleans()):
        members[draw(_CONVERSATION_EXTRAS)] = draw(json_values())
    return members


_MODES: Final = st.sampled_from(MODES).map(lambda mode: mode.upper() if len(mode) % 2 else mode)
_OTHER_FIELDS: Final = st.lists(
    st.sampled_from(PERSONAL + UNUSED).flatmap(lambda name: st.sampled_from([name, snake(name)])),
    max_size=3,
)
_SKILLS: Final = st.lists(st.none() | _ref(strings()), max_size=3)
_UNKNOWN: Final = st.lists(st.tuples(st.text(max_size=12), json_values()), max_size=2)


@functools.cache
def snapshot_members(
    ids: st.SearchStrategy[str] | None = None, near: float | None = None
) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """The members of one snapshot object, in order, keys possibly repeated.

    ``ids`` draws interaction (and campaign, agent, queue) ids; ``near`` centres the
    times (see :func:`moments`).
    """
    ids = ids if ids is not None else strings()
    fields: dict[str, st.SearchStrategy[Any]] = {
        "dialingMode": _MODES,
        "activePreviewCall": st.booleans(),
        "disposition": strings(),
        **dict.fromkeys(WIRE_TIMES.values(), moments(near).map(lambda moment: moment.text)),
    }
    return _snapshot_members(ids, _ref(ids), fields, _conversation(near))


@st.composite
def _snapshot_members(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    refs: st.SearchStrategy[dict[str, Any]],
    fields: dict[str, st.SearchStrategy[Any]],
    conversations: st.SearchStrategy[dict[str, Any]],
) -> list[tuple[str, Any]]:
    members: list[tuple[str, Any]] = []
    if draw(_ROLL):  # now and then no id at all
        members.append(("id", _sometimes_anything(draw, ids)))
    for name in ("campaign", "agent", "queue"):
        if draw(st.booleans()):
            members.append((name, _sometimes_anything(draw, refs)))
    for camel, good in fields.items():
        if draw(st.booleans()):
            for key in draw(_spellings(camel)) if snake(camel) != camel else [camel]:
                members.append((key, _sometimes_anything(draw, good)))
    if draw(st.booleans()):
        members.append(("conversation", _sometimes_anything(draw, conversations)))
    members += [(name, draw(json_values())) for name in draw(_OTHER_FIELDS)]
    if draw(st.booleans()):
        members.append(("skills", draw(_SKILLS)))
    members += draw(_UNKNOWN)
    if members and draw(_ROLL) == 0:  # a key repeated, later value wins
        key, _ = draw(st.sampled_from(members))
        members.append((key, _sometimes_anything(draw, json_values())))
    return draw(st.permutations(members))


def render(members: list[tuple[str, Any]]) -> bytes:
    """The JSON object text of ``members``, repeated keys kept as they are."""
    body = ", ".join(f"{json.dumps(key)}: {json.dumps(value)}" for key, value in members)
    return ("{" + body + "}").encode()


_BAD_KEY: Final = st.just(b"\xff")
_NOT_SNAPSHOTS: Final = st.binary(max_size=40) | st.sampled_from(
    [b"", b"{", b'{"id": "i", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"]
)


@functools.cache
def records(
    ids: st.SearchStrategy[str] | None = None, near: float | None = None
) -> st.SearchStrategy[tuple[bytes | None, bytes | None]]:
    """Kafka-shaped ``(key, value)`` records: snapshots, tombstones, and non-snapshots.

    With ``ids`` from a small pool and ``near`` set, the same interactions come back
    with times close together: a sequence of these drives a tracker through real work.
    """
    keys = st.none() | (ids if ids is not None else strings()).map(str.encode)
    snapshots = st.tuples(keys, snapshot_members(ids, near).map(render))
    tombstones = st.tuples(keys | _BAD_KEY, st.none())
    others = st.tuples(
        keys, json_values().map(lambda value: json.dumps(value).encode()) | _NOT_SNAPSHOTS
    )
    return st.one_of(snapshots, snapshots, snapshots, snapshots, tombstones, others)
