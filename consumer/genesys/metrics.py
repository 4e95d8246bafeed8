"""The Genesys Cloud poller's metrics (``interaction-consumer poll``), on an injected registry.

The poller is a process of its own, so these are the only families (with the standard
``process_*`` and ``python_*`` ones) on its port. Label values are fixed sets, the
Platform API's HTTP statuses, and campaign ids (of campaigns failing now only): never an
interaction, agent or contact id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumer.formats.campaigns import BUCKETS


class PollerMetrics:
    """The Genesys Cloud poller's metrics (``interaction-consumer poll``) on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "genesys_poller_requests",
            "Platform API requests, by endpoint (token, campaigns, campaign, interactions) and "
            "HTTP status (error: no answer).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.poll_seconds = Histogram(
            "genesys_poller_poll_duration_seconds",
            "Time to poll one campaign's interactions and publish what changed.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.polls = Counter(
            "genesys_poller_polls",
            "Campaign polls, by result: ok, failed (retried next round), incomplete (an answer "
            "without the lists or that does not decode: no absence counted), not_found "
            "(dropped at the second in a row).",
            ["result"],
            registry=registry,
        )
        self.budget_used = Gauge(
            "genesys_poller_rate_budget_used",
            "Platform API requests sent in the last 60 seconds.",
            registry=registry,
        )
        self.budget_limit = Gauge(
            "genesys_poller_rate_budget_limit",
            "Platform API requests allowed in any 60 seconds (genesys.requests_per_minute).",
            registry=registry,
        )
        self.backoffs = Counter(
            "genesys_poller_backoffs",
            "Pauses before retrying, by cause: rate_limited (429), unavailable (5xx, network).",
            ["cause"],
            registry=registry,
        )
        self.interactions = Gauge(
            "genesys_poller_interactions",
            "Interactions in the latest successful poll of every campaign, by list.",
            ["bucket"],
            registry=registry,
        )
        self.invalid = Counter(
            "genesys_poller_invalid_interactions",
            "Interactions skipped: not an object, no id to key them by, or larger than "
            "kafka.max_record_bytes.",
            registry=registry,
        )
        self.published = Counter(
            "genesys_poller_records_published",
            "Records published, by kind: snapshot (a changed interaction), tombstone (absent "
            "from two polls), campaign (changed campaign settings).",
            ["kind"],
            registry=registry,
        )
        self.heartbeats = Counter(
            "genesys_poller_heartbeats",
            "Heartbeat records sent (one per partition after each successful round).",
            registry=registry,
        )
        self.token_renewals = Counter(
            "genesys_poller_token_renewals",
            "Access tokens obtained, by reason: start, expiry (renewed before it ran out), "
            "unauthorized (the API answered 401).",
            ["reason"],
            registry=registry,
        )
        self.login_refusals = Counter(
            "genesys_poller_login_refusals",
            "Token requests the login endpoint refused (bad client id or secret).",
            registry=registry,
        )
        self.campaigns = Gauge(
            "genesys_poller_campaigns", "Campaigns being polled.", registry=registry
        )
        self.campaign_failing = Gauge(
            "genesys_poller_campaign_failing",
            "Polls of a campaign failed in a row, by campaign id and why the last failed "
            "(refused: 403 and other 4xx, not_found, unavailable, rate_limited, bad_answer, "
            "publish); present only while it fails. Its heartbeats vouch no further meanwhile.",
            ["campaign_id", "reason"],
            registry=registry,
        )
        self.round_seconds = Gauge(
            "genesys_poller_round_seconds",
            "How long the last round took (the heartbeats' intervalSeconds is at least this).",
            registry=registry,
        )
        self.budget_short = Gauge(
            "genesys_poller_budget_short",
            "1 when genesys.requests_per_minute cannot poll every campaign within "
            "genesys.interval_seconds (rounds overrun the interval).",
            registry=registry,
        )
        for bucket in BUCKETS:
            self.interactions.labels(bucket)
        for kind in ("snapshot", "tombstone", "campaign"):
            self.published.labels(kind)
        for result in ("ok", "failed", "incomplete", "not_found"):
            self.polls.labels(result)
        for reason in ("start", "expiry", "unauthorized"):
            self.token_renewals.labels(reason)
        for cause in ("rate_limited", "unavailable"):
            self.backoffs.labels(cause)
