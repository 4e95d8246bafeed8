"""Histogram buckets counted in bulk.

The daemon observes a delay for nearly every record it applies and a latency for most
stage changes: tens of thousands a second. Counted one call at a time from Python that
was about five per cent of the service's time; here a whole batch is one call, and this
module is compiled by mypyc (``setup.py``), so the loop around the bisection is C too.
"""

from __future__ import annotations

from bisect import bisect_left


def count(series: list[float], bounds: list[float], values: list[float]) -> None:
    """Add ``values`` to ``series``: per-bucket counts (not cumulative), then their sum.

    ``series`` has one slot per bound, one for ``+Inf`` and the sum last. A value goes to
    the first bound not below it (Prometheus' ``le``).
    """
    total = 0.0
    for value in values:
        series[bisect_left(bounds, value)] += 1.0
        total += value
    series[-1] += total
