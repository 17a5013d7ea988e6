"""The alert deliveries' metrics (S10.4), per target named without its secret (``json#1``):
messages a target took, messages given up after every retry, retries, alerts held back by the
rate limit and summed up, alerts dropped by a full queue, and each queue's depth."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.delivered = Counter(
            "mimik_alerts_delivered",
            "Alert messages a target took, by target (scheme#position)",
            ["target"],
            registry=r,
        )
        self.failed = Counter(
            "mimik_alert_failures",
            "Alert messages a target did not take after every retry, by target",
            ["target"],
            registry=r,
        )
        self.retries = Counter(
            "mimik_alert_retries", "Alert sends retried after a failure, by target", ["target"],
            registry=r,
        )  # fmt: skip
        self.summarised = Counter(
            "mimik_alerts_summarised",
            "Alerts held back by a target's rate limit and summed up in one message, by target",
            ["target"],
            registry=r,
        )
        self.dropped = Counter(
            "mimik_alerts_dropped",
            "Alerts dropped because a target's queue was full, by target",
            ["target"],
            registry=r,
        )
        self.queued = Gauge(
            "mimik_alert_queue_depth",
            "Alerts waiting in a target's queue, by target",
            ["target"],
            registry=r,
        )

    def target(self, name: str) -> None:
        """Every series of a target at 0 from its start, so a scrape sees it before any alert."""
        for metric in (self.delivered, self.failed, self.retries, self.summarised, self.dropped):
            metric.labels(name)
        self.queued.labels(name).set(0)


__all__ = ["AlertMetrics"]
