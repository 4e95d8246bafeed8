"""What the metrics classes share: a lock-free histogram, counters with known label values.

Each owner keeps its metrics beside it (:mod:`consumer.daemon.metrics`,
:mod:`consumer.daemon.engine_metrics`, :mod:`consumer.sinks.alertmanager`,
:mod:`consumer.observe.http`, :mod:`consumer.genesys.metrics`), on a registry it is given;
``scripts/gen_metrics_doc.py`` renders them all into the operator docs.

Label values are bounded: stages, outcomes and reasons are fixed sets, dialing modes map
to a fixed set, and campaigns are capped (:class:`~consumer.daemon.engine_metrics.CampaignLabels`).
Interaction, agent and contact ids never become labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.engine import buckets


class PlainHistogram(Collector):
    """A histogram counted in plain lists and exposed at scrape time.

    A batch's observations are counted in one compiled call (:mod:`consumer.engine.buckets`),
    where a prometheus-client ``Histogram`` takes a lock for its sum and for its bucket on
    each one: a few per cent of the daemon's time when it observes most records at tens
    of thousands a second. The daemon observes and scrapes in one thread, so no lock is
    needed.
    """

    def __init__(
        self, name: str, documentation: str, labels: list[str], bounds: tuple[float, ...]
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._bounds = [float(bound) for bound in bounds]
        # the "le" of each bucket, as prometheus-client writes it
        self._le = (*(repr(bound) for bound in self._bounds), "+Inf")
        # label values -> observations per bucket (not cumulative), then their sum
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], values: list[float]) -> None:
        """Count the observations ``values`` for ``labels``."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self._le) + 1)
        buckets.count(series, self._bounds, values)

    def describe(self) -> Iterator[Metric]:
        """The family, without samples: what the registry checks names against."""
        yield self._family()

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._documentation, labels=self._labels)

    def collect(self) -> Iterator[Metric]:
        """The family with every series counted so far, buckets made cumulative."""
        family = self._family()
        for labels, series in sorted(self._series.items()):
            buckets, total = [], 0.0
            for le, count in zip(self._le, series, strict=False):
                total += count
                buckets.append((le, total))
            family.add_metric(list(labels), buckets, sum_value=series[-1])
        yield family


def per_value(
    name: str, documentation: str, label: str, values: Iterable[str], registry: CollectorRegistry
) -> dict[str, Counter]:
    """A counter with one label whose values are known up front: each child made once."""
    counter = Counter(name, documentation, [label], registry=registry)
    return {value: counter.labels(value) for value in values}
