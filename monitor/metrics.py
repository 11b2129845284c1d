"""The optional Prometheus endpoint and health probes (prometheus-client, imported here only).

Enabled by ``[metrics] listen = "127.0.0.1:9464"``; keep it on a local address.
One listener answers:

- ``/metrics``: this process's counters (polls, fetch errors, items, hits by
  rule, delivery attempts, poll durations), its build and last reload, and
  gauges read from the store at scrape time (:class:`StoreGauges`): feeds by
  state, deliveries pending and failed, the last poll; those count what any
  process did (a ``news-monitor digest`` run, another instance); and whether
  this daemon's own writes to the store work (``news_monitor_store_writable``,
  ``news_monitor_store_unwritable_since_seconds``,
  ``news_monitor_store_write_errors_total``);
- ``/-/healthy``: 200 while the process runs;
- ``/-/ready``: 200 once the store is open and the rules are loaded, else 503
  with the reason (starting, stopping);
- anything else: 404.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor import __version__

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from monitor.pipeline import PollReport
    from monitor.settings import Settings
    from monitor.store import Store

log = logging.getLogger("monitor.metrics")

STORE_CACHE_SECONDS = 5.0  # a burst of scrapes costs one round of store queries
FEED_STATES = ("ok", "failing", "silent", "disabled")


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What the store says at one scrape."""

    feeds: dict[str, int]  # by state, every one of FEED_STATES present
    pending: int  # hit x channel pairs not delivered yet
    failed: int  # deliveries failed for good
    last_poll: datetime | None  # the latest poll of any configured feed, by any process


def read_figures(settings: Settings, store: Store) -> StoreFigures:
    """The store's figures for the configured feeds and desks (a few queries)."""
    from monitor.status import pending_pairs

    urls = [f.url for f in settings.feeds]
    counts, last_poll = store.feed_health(urls)
    # A configured feed the store has not polled yet (or has no row for) is ok.
    feeds = {"ok": max(0, len(urls) - sum(counts.values())), **counts}
    return StoreFigures(feeds={s: feeds.get(s, 0) for s in FEED_STATES},
                        pending=pending_pairs(settings, store),
                        failed=store.delivery_counts()["failed"], last_poll=last_poll)


class StoreGauges:
    """A prometheus-client collector: the store's figures, read at scrape time.

    Cached for ``ttl`` seconds. A scrape never raises: when the store fails,
    the store gauges are left out and ``news_monitor_store_up`` is 0.
    """

    def __init__(self, ttl: float = STORE_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._source: Callable[[], tuple[Settings, Store]] | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, StoreFigures | None] | None = None
        self._down = False

    def attach(self, source: Callable[[], tuple[Settings, Store]]) -> None:
        """Read from the (settings, store) that ``source`` gives at each refresh."""
        with self._lock:
            self._source = source
            self._cached = None

    def figures(self) -> StoreFigures | None:
        """The store's figures, cached; None when there is no store or it failed."""
        with self._lock:  # concurrent scrapes wait for the one query
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            figures: StoreFigures | None = None
            if self._source is not None:
                try:
                    figures = read_figures(*self._source())
                except Exception as e:  # a scrape must answer whatever the store does
                    if not self._down:
                        log.warning("metrics: cannot read the store: %s", e)
                    self._down = True
                else:
                    if self._down:
                        log.info("metrics: the store answers again")
                    self._down = False
            self._cached = (now, figures)
            return figures

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None, names_only=True)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.figures())

    def _families(self, figures: StoreFigures | None, *,
                  names_only: bool = False) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("news_monitor_store_up",
                                "1 when the last read of the store for these gauges worked",
                                value=0 if figures is None else 1)
        feeds = GaugeMetricFamily("news_monitor_feeds",
                                  "Configured feeds by state (ok, failing: last fetch failed, "
                                  "silent: quiet for longer than usual, disabled: 410 Gone)",
                                  labels=["state"])
        pending = GaugeMetricFamily("news_monitor_deliveries_pending",
                                    "Hit x channel pairs not delivered yet")
        failed = GaugeMetricFamily("news_monitor_deliveries_failed",
                                   "Deliveries failed for good (until `deliveries retry`)")
        last = GaugeMetricFamily("news_monitor_last_poll_timestamp_seconds",
                                 "When any process last polled a configured feed "
                                 "(Unix time; 0: never)")
        if figures is not None:
            for state in FEED_STATES:
                feeds.add_metric([state], figures.feeds[state])
            pending.add_metric([], figures.pending)
            failed.add_metric([], figures.failed)
            last.add_metric([], figures.last_poll.timestamp() if figures.last_poll else 0)
            yield from (feeds, pending, failed, last)
        elif names_only:
            yield from (feeds, pending, failed, last)


class Metrics:
    """The daemon's counters and gauges, and the listener that serves them."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 store_cache: float = STORE_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("news_monitor_polls", "Feed fetches attempted", registry=r)
        self.fetch_errors = Counter("news_monitor_fetch_errors", "Failed feed fetches by kind",
                                    ["kind"], registry=r)
        self.items = Counter("news_monitor_items", "New items stored", registry=r)
        self.hits = Counter("news_monitor_hits", "New hits stored, by rule", ["rule"],
                            registry=r)
        self.deliveries = Counter("news_monitor_deliveries",
                                  "Delivery attempts by this process, by outcome",
                                  ["state"], registry=r)
        for state in ("sent", "failed"):
            self.deliveries.labels(state=state)
        self.poll_seconds = Histogram("news_monitor_poll_duration_seconds",
                                      "Duration of one poll cycle", registry=r,
                                      buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
        self.build = Gauge("news_monitor_build_info", "The running version (always 1)",
                           ["version"], registry=r)
        self.build.labels(version=__version__).set(1)
        self.reload_ok = Gauge("news_monitor_config_last_reload_successful",
                               "1 when the last load of the configuration and rules worked",
                               registry=r)
        self.reload_ok.set(1)
        self.reload_at = Gauge("news_monitor_config_last_reload_success_timestamp_seconds",
                               "When the configuration and rules last loaded (Unix time)",
                               registry=r)
        self.reload_at.set_to_current_time()
        self.store_writable = Gauge("news_monitor_store_writable",
                                    "1 while this daemon's jobs write to the store; 0 from a "
                                    "job's failed write until that job works again",
                                    registry=r)
        self.store_writable.set(1)
        self.store_unwritable_since = Gauge(
            "news_monitor_store_unwritable_since_seconds",
            "When this daemon's writes to the store began to fail (Unix time; 0: they work)",
            registry=r)
        self.store_write_errors = Counter("news_monitor_store_write_errors",
                                          "Job runs of this daemon that failed on the store",
                                          registry=r)
        self.store = StoreGauges(store_cache, clock)
        r.register(self.store)
        self._not_ready: str | None = "starting: the store is not open yet"
        self._server: WSGIServer | None = None

    # -- what the daemon tells ------------------------------------------------------

    def rules_loaded(self, rule_ids: Iterable[str]) -> None:
        """Every loaded rule's hit counter is shown from now on, at 0 until its first hit."""
        for rule in rule_ids:
            self.hits.labels(rule=rule)

    def reloaded(self, ok: bool) -> None:
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_at.set_to_current_time()

    def ready(self, reason: str | None = None) -> None:
        """Ready (``reason`` None), or not ready and why (``/-/ready`` answers 503)."""
        self._not_ready = reason

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

    def store_health(self, failing_since: float | None) -> None:
        """The store works (None), or has failed this daemon's jobs since that Unix time."""
        self.store_writable.set(1 if failing_since is None else 0)
        self.store_unwritable_since.set(failing_since or 0)

    def store_write_failed(self) -> None:
        self.store_write_errors.inc()

    def observe_deliveries(self, sent: int, failed: int) -> None:
        self.deliveries.labels(state="sent").inc(sent)
        self.deliveries.labels(state="failed").inc(failed)

    # -- the listener -----------------------------------------------------------------

    def serve(self, host: str, port: int) -> None:
        """Answer on ``host:port`` from a daemon thread (OSError if it cannot bind)."""
        import socket
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        family = socket.getaddrinfo(host or "127.0.0.1", port, type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]

        class Server(ThreadingMixIn, WSGIServer):
            address_family = family
            daemon_threads = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not worth a log line

        self._server = make_server(host or "127.0.0.1", port, self._app,
                                   server_class=Server, handler_class=Quiet)
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True,
                         name="metrics").start()

    @property
    def port(self) -> int:
        assert self._server is not None, "not serving"
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _app(self, environ: dict[str, Any],
             start_response: Callable[..., Any]) -> Sequence[bytes]:
        from prometheus_client import make_wsgi_app

        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Sequence[bytes] = make_wsgi_app(self.registry)(environ, start_response)
            return body
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "OK")
        if path == "/-/ready":
            reason = self._not_ready
            if reason is None:
                return _text(start_response, "200 OK", "OK")
            return _text(start_response, "503 Service Unavailable", f"not ready: {reason}")
        return _text(start_response, "404 Not Found",
                     "not found: try /metrics, /-/healthy or /-/ready")


def _text(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    data = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]
