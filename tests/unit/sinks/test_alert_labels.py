"""Static labels on the alerts posted to Alertmanager: what inhibitions scope by."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from consumer.formats.alerts import SourceAlert
from consumer.settings.load import load_settings
from consumer.settings.schema import AlertmanagerSettings, ConfigError
from consumer.sinks.alertmanager import AlertmanagerSink, to_alertmanager
from tests.unit.am_double import alertmanager
from tests.unit.sinks.test_alertmanager_sink import stalled_alert

STATIC = {"namespace": "dialer-a", "org": "acme"}


def silent(topic: str) -> SourceAlert:
    """A source-silent alert on ``topic``."""
    return SourceAlert(
        status="firing",
        alert_id="s-1",
        rule="source_silent",
        topic=topic,
        source_id="genesys-poller",
        last_heartbeat_at="2026-11-25T09:48:20Z",
        threshold_seconds=60.0,
        silent_for_seconds=61.0,
        observed_at="2026-11-25T09:49:21Z",
    )


def test_stall_and_source_alerts_carry_topic_and_the_static_labels() -> None:
    """Both kinds of alert carry alertmanager.labels and a topic; their own labels stay."""
    firing, _ = stalled_alert()
    static = {"topic": "campaign-interactions", **STATIC}
    stall = to_alertmanager(firing, static).labels
    assert stall.items() >= static.items()
    assert stall["alertname"] == "DialerPreviewStalled"
    assert stall["interaction_id"] == firing.interaction_id
    source = to_alertmanager(silent("other-topic"), static).labels
    assert source.items() >= STATIC.items()
    assert source["topic"] == "other-topic"  # the silent source's topic, not the one read


def test_the_sink_posts_the_topic_it_reads_and_the_static_labels() -> None:
    """What reaches Alertmanager carries the sink's topic and alertmanager.labels."""
    firing, _ = stalled_alert()

    async def scenario() -> dict[str, str]:
        async with alertmanager() as fake:
            settings = AlertmanagerSettings(urls=[fake.url], labels=STATIC)
            sink = AlertmanagerSink(settings, CollectorRegistry(), topic="campaign-interactions")
            sink.start()
            await sink.publish([firing])
            await fake.until({firing.interaction_id})
            await sink.stop()
            labels: dict[str, str] = fake.posts[0][0]["labels"]
            return labels

    labels = asyncio.run(scenario())
    assert labels.items() >= {"topic": "campaign-interactions", **STATIC}.items()


def test_static_labels_load_from_the_environment() -> None:
    """INTERACTION_CONSUMER_ALERTMANAGER_LABELS takes a TOML inline table."""
    env = {"INTERACTION_CONSUMER_ALERTMANAGER_LABELS": '{namespace = "dialer-a", org = "acme"}'}
    assert load_settings(env=env).alertmanager.labels == STATIC


@pytest.mark.parametrize("name", ["alertname", "topic", "interaction_id", "bad-name", "__x"])
def test_static_labels_cannot_replace_the_services_own_or_be_invalid(name: str) -> None:
    """A static label named like one the service sets, or no label name at all, is refused."""
    with pytest.raises(ConfigError, match=r"alertmanager\.labels"):
        load_settings(env={"INTERACTION_CONSUMER_ALERTMANAGER_LABELS": f'{{"{name}" = "x"}}'})
