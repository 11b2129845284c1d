"""The optional Prometheus ``/metrics`` endpoint (prometheus-client, imported here only).

Enabled by ``[metrics] listen = "127.0.0.1:9464"``; keep it on a local address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from monitor.pipeline import PollReport


class Metrics:
    """The daemon's counters, served over HTTP by prometheus-client."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("news_monitor_polls", "Feed fetches attempted", registry=r)
        self.fetch_errors = Counter("news_monitor_fetch_errors", "Failed feed fetches by kind",
                                    ["kind"], registry=r)
        self.items = Counter("news_monitor_items", "New items stored", registry=r)
        self.hits = Counter("news_monitor_hits", "New hits stored, by rule", ["rule"],
                            registry=r)
        self.deliveries = Counter("news_monitor_deliveries", "Delivery attempts by outcome",
                                  ["state"], registry=r)
        self.poll_seconds = Histogram("news_monitor_poll_duration_seconds",
                                      "Duration of one poll cycle", registry=r,
                                      buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))

    @classmethod
    def serve(cls, host: str, port: int) -> Metrics:
        from prometheus_client import start_http_server

        metrics = cls()
        start_http_server(port, addr=host or "127.0.0.1", registry=metrics.registry)
        return metrics

    def observe_poll(self, report: PollReport) -> None:
        self.polls.inc(len(report.outcomes))
        for o in report.outcomes:
            if not o.ok:
                kind = o.status if isinstance(o.status, str) else (
                    "http" if o.status and o.status >= 400 else "not_a_feed")
                self.fetch_errors.labels(kind=kind).inc()
        self.items.inc(report.new_items)
        for rule, n in report.hits_by_rule.items():
            self.hits.labels(rule=rule).inc(n)
        self.poll_seconds.observe(report.seconds)

    def observe_deliveries(self, sent: int, failed: int) -> None:
        self.deliveries.labels(state="sent").inc(sent)
        self.deliveries.labels(state="failed").inc(failed)
