"""Histogram buckets counted in bulk.

The daemon observes a delay for nearly every record it applies and a latency for most
stage changes: tens of thousands a second. Counted one call at a time from Python that
was about five per cent of the service's time; this module is compiled by mypyc
(``setup.py``), so a whole batch is one call and a loop over unboxed floats.
"""

from __future__ import annotations


def count(series: list[float], bounds: list[float], values: list[float]) -> None:
    """Add ``values`` to ``series``: per-bucket counts (not cumulative), then their sum.

    ``series`` has one slot per bound, one for ``+Inf`` and the sum last. A value goes to
    the first bound not below it (Prometheus' ``le``), as :func:`bisect.bisect_left`
    places it; NaN, below no bound and above none, lands in the first bucket as it does there.
    """
    high = len(bounds)
    total = 0.0
    for value in values:
        lo, hi = 0, high
        while lo < hi:
            mid = (lo + hi) // 2
            if bounds[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        series[lo] += 1.0
        total += value
    series[-1] += total
