"""The optional Prometheus endpoint serves the daemon's counters."""

from __future__ import annotations

import socket
import urllib.request

from monitor.metrics import Metrics
from monitor.pipeline import FeedOutcome, PollReport


def test_metrics_endpoint_serves_poll_and_delivery_counters() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics = Metrics.serve("127.0.0.1", port)
    metrics.observe_poll(PollReport((
        FeedOutcome("a", "A", 200, new_items=3,
                    hits=(("btc-diversion", 1), ("cpc-disruption", 2))),
        FeedOutcome("d", "D", 304, hits=(("cpc-disruption", 1),)),
        FeedOutcome("b", "B", "timeout", error="took too long"),
        FeedOutcome("c", "C", 500, error="HTTP 500"),
    ), skipped=0, seconds=0.7))
    metrics.observe_deliveries(sent=2, failed=1)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "news_monitor_polls_total 4.0" in text
    assert 'news_monitor_fetch_errors_total{kind="timeout"} 1.0' in text
    assert 'news_monitor_fetch_errors_total{kind="http"} 1.0' in text
    assert "news_monitor_items_total 3.0" in text
    assert 'news_monitor_hits_total{rule="cpc-disruption"} 3.0' in text
    assert 'news_monitor_hits_total{rule="btc-diversion"} 1.0' in text
    assert 'news_monitor_deliveries_total{state="sent"} 2.0' in text
    assert "news_monitor_poll_duration_seconds_count 1.0" in text
