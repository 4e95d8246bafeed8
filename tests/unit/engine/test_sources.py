"""Which sources are silent: per partition, one alert per topic and source, across owners."""

from __future__ import annotations

from consumer.engine.sources import SourceState, SourceWatch, interval_believed, vouched
from consumer.formats.alerts import to_source_alert

T0 = 1_800_000_000.0


def test_a_partition_is_vouched_for_as_far_as_its_least_advanced_source() -> None:
    """The clock bound is the oldest of the sources' newest heartbeats; none: no bound."""
    assert vouched({}) is None
    sources = {"a": SourceState(T0 + 30, 1.0), "b": SourceState(T0 + 10, 1.0)}
    assert vouched(sources) == T0 + 10


def test_intervals_outside_a_tenth_of_a_second_to_an_hour_are_not_believed() -> None:
    """0.1 s - 1 h, or no interval said, is believed; 86400, 1e300, 0.01 are not."""
    assert all(interval_believed(i) for i in (None, 0.1, 10.0, 3600.0))
    assert not any(interval_believed(i) for i in (0.0, 0.01, 3600.5, 86400.0, 1e300))


def test_silence_waits_for_the_interval_plus_grace_of_a_slow_source() -> None:
    """source_silent_seconds, but never before interval + grace (unset: one more interval)."""
    watch = SourceWatch("t", 60.0)
    assert watch.silent_after(SourceState(T0, 10.0)) == 60.0
    assert watch.silent_after(SourceState(T0, 600.0)) == 1200.0
    assert SourceWatch("t", 10.0, grace=4.0).silent_after(SourceState(T0, 1.0)) == 10.0


def test_every_owner_speaks_of_one_silence_under_one_alert_id() -> None:
    """Two instances, each with its partitions: the same alertId fires; a new owner adopts it."""
    first, second = SourceWatch("t", 10.0), SourceWatch("t", 10.0)
    p0, p1 = {"poller": SourceState(T0, 1.0)}, {"poller": SourceState(T0, 1.0)}
    assert first.judge(p0, T0 + 11) == ["poller"]
    assert second.judge(p1, T0 + 12) == ["poller"]
    (a,) = first.gather([p0], T0 + 11)
    (b,) = second.gather([p1], T0 + 12)
    assert to_source_alert(a).alert_id == to_source_alert(b).alert_id
    # p0 moves to the second instance: the first forgets it silently, the second continues
    first.forget([])
    assert first.gather([], T0 + 13) == []
    second.adopt(p0)
    assert second.gather([p0, p1], T0 + 13) == []
    # heartbeats return on both: one resolution, under the same id
    p0["poller"].up_to = p1["poller"].up_to = T0 + 14
    second.judge(p0, T0 + 14)
    second.judge(p1, T0 + 14)
    (resolved,) = second.gather([p0, p1], T0 + 14)
    assert (resolved.status, to_source_alert(resolved).alert_id) == (
        "resolved",
        to_source_alert(a).alert_id,
    )


def test_a_retired_source_resolves_as_retired() -> None:
    """An operator's retirement resolves the alert with the resolution ``retired``."""
    watch = SourceWatch("t", 10.0)
    p0 = {"old": SourceState(T0, 1.0)}
    watch.judge(p0, T0 + 11)
    (fired,) = watch.gather([p0], T0 + 11)
    retired = watch.retire("old", T0, T0 + 20)
    alert = to_source_alert(retired)
    assert (alert.status, alert.resolution) == ("resolved", "retired")
    assert alert.alert_id == to_source_alert(fired).alert_id
    assert watch.silent == 0
