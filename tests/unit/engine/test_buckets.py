"""Histogram buckets counted in bulk: the same buckets and sum as one bisection per value."""

from __future__ import annotations

import bisect
import math

from hypothesis import given
from hypothesis import strategies as st

from consumer.engine import buckets

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0]


def _one_by_one(values: list[float]) -> list[float]:
    series = [0.0] * (len(BOUNDS) + 2)
    for value in values:
        series[bisect.bisect_left(BOUNDS, value)] += 1
        series[-1] += value
    return series


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(BOUNDS)))
def test_bulk_counts_match_one_bisection_per_value(values: list[float]) -> None:
    """Every value lands in the bucket bisect_left gives it (bounds are inclusive), sum last."""
    series = [0.0] * (len(BOUNDS) + 2)
    buckets.count(series, BOUNDS, values)
    expected = _one_by_one(values)
    assert series[:-1] == expected[:-1]
    if math.isnan(expected[-1]):
        assert math.isnan(series[-1])
    else:
        assert series[-1] == expected[-1] or math.isclose(series[-1], expected[-1])


def test_counts_add_to_what_is_there() -> None:
    """A second batch adds to the first: the series is a running total."""
    series = [0.0] * (len(BOUNDS) + 2)
    buckets.count(series, BOUNDS, [0.005, 700.0])
    buckets.count(series, BOUNDS, [0.006])
    assert series[0] == 1.0  # 0.005 <= le 0.005
    assert series[1] == 1.0  # 0.006 <= le 0.01
    assert series[len(BOUNDS)] == 1.0  # +Inf
    assert series[-1] == 700.011
