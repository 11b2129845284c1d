"""``news-monitor run``: the scheduler that wires polls, digests and alerts together.

Wiring only: APScheduler 3.x triggers the pipeline's poll of due feeds, each
desk's digest at its cron time in its time zone, the alert and retry drain,
the rules watcher and housekeeping. The work itself lives in
:mod:`monitor.pipeline` and :mod:`monitor.deliver`.

Jobs (stable ids): ``poll`` (every tick: feeds whose ``next_poll`` is due —
the store keeps each feed's interval, jitter and back-off), ``digest:<desk>``,
``_internal:alerts``, ``_internal:rules-watch``, ``_internal:heartbeat``,
``_internal:housekeeping``, ``_internal:sweep`` (once, at start),
``_internal:watchdog``. All run with ``coalesce=True, max_instances=1``: no two
runs of one job overlap, and runs missed during a suspend are caught up once.
Digests missed while the daemon was stopped are sent once at start.

Heartbeat: the daemon's ``daemon:<host>:<pid>`` row in the store (what
``status`` lists) is refreshed every :func:`monitor.status.heartbeat_interval`
seconds; housekeeping (and each start) deletes the rows of daemons whose
heartbeat stopped, and a clean stop deletes its own.

Signals: SIGTERM/SIGINT stop (work in flight is finished or rolled back, exit
0 within 10 s); SIGHUP reloads configuration and rules, keeping the last good
set when either is broken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from monitor import __version__, memory, sdnotify, status
from monitor.config import load_settings
from monitor.errors import ConfigError, MonitorError, Problem, RuleFileError
from monitor.match import Matcher
from monitor.models import isoformat_z
from monitor.pipeline import Poller, PollReport
from monitor.rules import RuleSet, load_rules, rule_files
from monitor.settings import Settings, idle_desks, unreadable_secrets, validate_desk_rules
from monitor.store import Store
from monitor.timespec import parse_cron

if TYPE_CHECKING:
    from monitor.deliver import DeliveryReport
    from monitor.metrics import Metrics

log = logging.getLogger("monitor.daemon")
T = TypeVar("T")

STOP_DEADLINE = 8.0  # seconds: systemd's TimeoutStopSec is 10 s


class Daemon:
    """Load, schedule, run until stopped. :meth:`run` returns the exit status."""

    def __init__(self, config: str | None, *, tick: float | None = None) -> None:
        self.config = config
        self.tick = tick
        self.stop = threading.Event()
        self.reload_requested = threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.notify = sdnotify.Notifier()
        self._lock = threading.RLock()
        self._rules_signature: tuple[tuple[str, int, int], ...] = ()
        self.started = datetime.now(UTC)
        self.heartbeat = status.heartbeat_interval()
        self.last_reload: dict[str, object] | None = None
        self.last_poll: PollReport | None = None
        self.scheduler: Any = None  # APScheduler's BackgroundScheduler: it ships no types
        self.metrics: Metrics | None = None

    # -- loading ------------------------------------------------------------------

    def _load(self) -> tuple[Settings, RuleSet]:
        """Configuration and rules, or ConfigError/RuleFileError with every problem."""
        settings = load_settings(self.config)
        rules = load_rules(settings.rules_dir)
        problems: list[Problem] = []
        validate_desk_rules(settings, set(rules.ids), problems.append)
        if problems:
            raise ConfigError(problems)
        return settings, rules

    def _apply(self, settings: Settings, rules: RuleSet) -> None:
        from monitor.deliver import Deliverer

        with self._lock:
            self.settings = settings
            self.rules = rules
            self.poller = Poller(settings, self.store, Matcher(rules), owner=self.owner)
            self.deliverer = Deliverer(settings, self.store, rules, owner=self.owner)
            self._rules_signature = _signature(settings.rules_dir)
        if self.metrics is not None:
            self.metrics.rules_loaded(rules.ids)
        self.store.register_desks(d.name for d in settings.desks)

    # -- the main loop -----------------------------------------------------------

    def run(self) -> int:
        from monitor import log as logsetup

        # Before any thread starts: glibc gives each new thread an arena (up to 8 per
        # core), each holding its own free memory; 2 saved ~2 MiB and a third of the
        # growth under steady load (bench/README.md). The unit sets MALLOC_ARENA_MAX.
        memory.limit_arenas()
        logsetup.setup("info")
        try:
            settings, rules = self._load()
        except (ConfigError, RuleFileError) as e:
            for p in e.problems:
                log.error("%s", p)
            return 1
        self._start_metrics(settings)  # health probes answer while the store opens
        logsetup.setup(settings.log_level, settings.log_format)
        # Polling needs no secret: start, and say what the sends will lack.
        for p in unreadable_secrets(settings):
            log.warning("%s; the deliveries that need it fail until then", p)
        for p in idle_desks(settings):
            log.warning("%s", p)
        try:
            self.store = Store.open(settings.storage_url, timeout=settings.storage_timeout)
        except MonitorError as e:
            log.error("%s", e)
            return 1
        self._apply(settings, rules)
        self._metrics_ready()
        self._install_signals()
        self._start_scheduler()
        self._catch_up_digests()
        self._publish()
        log.info("started news-monitor %s: %d feeds, %d rules (%s), %d desks", __version__,
                 len(settings.feeds), len(rules.rules), ", ".join(rules.ids), len(settings.desks))
        _warn_no_desks(settings)
        self.notify.ready(self._status_line())
        while not self.stop.is_set():
            self.stop.wait(0.5)
            if self.reload_requested.is_set() and not self.stop.is_set():
                self.reload_requested.clear()
                self.reload(reason="SIGHUP")
        return self._shutdown()

    def _shutdown(self) -> int:
        log.info("stopping")
        self.notify.stopping()
        if self.metrics is not None:
            self.metrics.ready("stopping")
        started = time.monotonic()
        sched = self.scheduler
        # Jobs see self.stop and end their work early; wait for them, bounded.
        done = threading.Event()

        def wait() -> None:
            sched.shutdown(wait=True)
            done.set()

        threading.Thread(target=wait, daemon=True, name="shutdown").start()
        if not done.wait(STOP_DEADLINE):
            log.warning("jobs still running after %.0fs; leaving them (their transactions "
                        "roll back)", STOP_DEADLINE)
        if self.metrics is not None:
            self.metrics.close()  # no scrape reads the store once it is closed
        with contextlib.suppress(MonitorError):
            self.store.delete_states([f"daemon:{self.owner}"])
        self.store.close()
        log.info("stopped in %.1fs", time.monotonic() - started)
        return 0

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            self.stop.set()

        def hup(_signum: int, _frame: Any) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    # -- scheduling --------------------------------------------------------------

    def _start_scheduler(self) -> None:
        from apscheduler.events import EVENT_JOB_ERROR
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self.scheduler.add_listener(self._job_error, EVENT_JOB_ERROR)
        now = datetime.now(UTC)
        tick = self.tick or self._default_tick()
        self.scheduler.add_job(self._job_poll, "interval", seconds=tick, id="poll",
                               next_run_time=now)
        self.scheduler.add_job(self._job_alerts, "interval", seconds=min(30.0, tick * 2),
                               id="_internal:alerts", next_run_time=now + timedelta(seconds=1))
        self.scheduler.add_job(self._job_rules_watch, "interval", seconds=1.0,
                               id="_internal:rules-watch")
        self.scheduler.add_job(lambda: self._guard("status", self._publish), "interval",
                               seconds=self.heartbeat, id="_internal:heartbeat",
                               next_run_time=now + timedelta(seconds=self.heartbeat))
        self.scheduler.add_job(self._job_housekeeping, "interval", hours=1,
                               id="_internal:housekeeping",
                               next_run_time=now + timedelta(minutes=1))
        # The rows of daemons that died (SIGKILL, power loss) go at start, not an hour later.
        self.scheduler.add_job(self._sweep_daemons, id="_internal:sweep", next_run_time=now)
        interval = sdnotify.watchdog_interval()
        if interval:
            self.scheduler.add_job(self.notify.watchdog, "interval", seconds=interval,
                                   id="_internal:watchdog", next_run_time=now)
        self._schedule_digests()
        self.scheduler.start()

    def _default_tick(self) -> float:
        intervals = [self.settings.feed_interval(f) for f in self.settings.feeds] or [60.0]
        return max(0.5, min(10.0, min(intervals) / 4))

    def _schedule_digests(self) -> None:
        from apscheduler.triggers.cron import CronTrigger

        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for desk in self.settings.desks:
            trigger = CronTrigger(timezone=desk.timezone, **parse_cron(desk.schedule))
            self.scheduler.add_job(self._job_digest, trigger, args=[desk.name],
                                   id=f"digest:{desk.name}", misfire_grace_time=None)

    def _catch_up_digests(self) -> None:
        """A digest whose time came while the daemon was stopped is sent once now."""
        from apscheduler.triggers.cron import CronTrigger

        now = datetime.now(UTC)
        for desk in self.settings.desks:
            last = self.store.get_state(f"digest:{desk.name}")
            if not last:
                self.store.put_state(f"digest:{desk.name}", now.isoformat())
                continue
            trigger = CronTrigger(timezone=desk.timezone, **parse_cron(desk.schedule))
            due = trigger.get_next_fire_time(None, datetime.fromisoformat(last)
                                             + timedelta(seconds=1))
            if due is not None and due <= now:
                log.info("digest:%s: missed at %s while stopped; sending it now", desk.name,
                         due.isoformat())
                self.scheduler.add_job(self._job_digest, args=[desk.name],
                                       id=f"catchup:{desk.name}")

    def _job_error(self, event: Any) -> None:
        log.error("job %s failed: %s", event.job_id, event.exception)

    def _guard(self, name: str, work: Callable[[], T]) -> T | None:
        """Run a job's work; a store outage fails this run only, logged once per run."""
        if self.stop.is_set():
            return None
        try:
            return work()
        except MonitorError as e:
            log.error("%s: %s", name, e)
            return None

    # -- jobs -------------------------------------------------------------------

    def _job_poll(self) -> None:
        with self._lock:
            poller = self.poller
        report = self._guard("poll", lambda: poller.poll(due_only=True, stop=self.stop))
        if report is None or not report.outcomes:
            return
        self.last_poll = report
        if report.new_hits or report.failed:
            log.info("%s", report.summary())
        else:
            log.debug("%s", report.summary())
        if self.metrics is not None:
            self.metrics.observe_poll(report)
        if report.new_hits:
            self._job_alerts()
        self.notify.status(self._status_line())
        self._guard("status", self._publish)

    def _job_alerts(self) -> None:
        with self._lock:
            deliverer = self.deliverer
        self._count(self._guard("alerts", deliverer.send_alerts))
        self._count(self._guard("retries", deliverer.retry_due))

    def _job_digest(self, desk: str) -> None:
        with self._lock:
            deliverer = self.deliverer
        self._count(self._guard(f"digest:{desk}", lambda: deliverer.send_digests(desk)))
        self._guard(f"digest:{desk}", lambda: self.store.put_state(
            f"digest:{desk}", datetime.now(UTC).isoformat()))

    def _count(self, report: DeliveryReport | None) -> None:
        if report is not None and self.metrics is not None:
            self.metrics.observe_deliveries(report.sent, report.failed)

    def _notice(self, text: str) -> None:
        """An ops notice to the desks that opted in (``ops_notices = true``)."""
        with self._lock:
            deliverer = self.deliverer
        self._count(self._guard("notice", lambda: deliverer.send_notice(text)))

    def _job_rules_watch(self) -> None:
        with self._lock:
            directory, before = self.settings.rules_dir, self._rules_signature
        now = _signature(directory)
        if now != before:
            with self._lock:
                self._rules_signature = now  # a broken edit is reported once
            self.reload(reason="rule files changed", rules_only=True)

    def _job_housekeeping(self) -> None:
        from monitor.pipeline import check_rhythms

        with self._lock:
            settings = self.settings
        flagged = self._guard("housekeeping", lambda: check_rhythms(self.store, settings,
                                                                    datetime.now(UTC)))
        for label, flag in flagged or ():
            self._notice(f"{label}: {flag}")
        if settings.retention_items is not None:
            before = datetime.now(UTC) - timedelta(seconds=settings.retention_items)
            removed = self._guard("housekeeping", lambda: self.store.purge_items(before))
            if removed:
                log.info("housekeeping: removed %d items older than %s", removed,
                         before.date().isoformat())
        self._sweep_daemons()

    def _sweep_daemons(self) -> None:
        """Delete the status rows of daemons whose heartbeat stopped (never our own)."""
        mine = f"daemon:{self.owner}"

        def sweep() -> list[str]:
            stale = [k for k in status.stale_daemon_keys(self.store) if k != mine]
            self.store.delete_states(stale)
            return stale

        for key in self._guard("housekeeping", sweep) or ():
            log.info("housekeeping: removed the status of %s (its heartbeat stopped)",
                     key.removeprefix("daemon:"))

    # -- reload ---------------------------------------------------------------------

    def reload(self, *, reason: str, rules_only: bool = False) -> bool:
        """Load configuration (unless ``rules_only``) and rules; keep the old on error."""
        self.notify.reloading()
        when = datetime.now(UTC)
        try:
            if rules_only:
                settings = self.settings
                rules = load_rules(settings.rules_dir)
                problems: list[Problem] = []
                validate_desk_rules(settings, set(rules.ids), problems.append)
                if problems:
                    raise ConfigError(problems)
            else:
                settings, rules = self._load()
        except (ConfigError, RuleFileError) as e:
            for p in e.problems:
                log.error("reload (%s) rejected: %s", reason, p)
            log.error("keeping the last good configuration and rules (%s)",
                      ", ".join(self.rules.ids))
            self.last_reload = {"at": when.isoformat(), "ok": False, "reason": reason,
                                "errors": [str(p) for p in e.problems]}
            if self.metrics is not None:
                self.metrics.reloaded(False)
            self.notify.ready(self._status_line())
            self._guard("status", self._publish)
            return False
        if settings.storage_url != self.settings.storage_url:
            log.warning("storage.url changed: that takes a restart; keeping %s",
                        _redact_url(self.settings.storage_url))
        self._apply(settings, rules)
        if not rules_only:
            self._schedule_digests()
            from monitor import log as logsetup

            logsetup.setup(settings.log_level, settings.log_format)
        self.last_reload = {"at": when.isoformat(), "ok": True, "reason": reason}
        if self.metrics is not None:
            self.metrics.reloaded(True)
        log.info("reloaded (%s): %d feeds, %d rules (%s), %d desks", reason,
                 len(settings.feeds), len(rules.rules), ", ".join(rules.ids),
                 len(settings.desks))
        _warn_no_desks(settings)
        self.notify.ready(self._status_line())
        self._guard("status", self._publish)
        return True

    # -- what status shows --------------------------------------------------------------

    def _status_line(self) -> str:
        p = self.last_poll
        polled = f"; last poll {p.ok} ok, {p.failed} failed, {p.new_hits} hits" if p else ""
        return f"{len(self.settings.feeds)} feeds, {len(self.rules.rules)} rules{polled}"

    def _publish(self) -> None:
        p = self.last_poll
        self.store.put_state(f"daemon:{self.owner}", {
            "pid": os.getpid(), "host": socket.gethostname(), "version": __version__,
            "started": isoformat_z(self.started), "last_seen": isoformat_z(datetime.now(UTC)),
            "heartbeat": self.heartbeat, "owner": self.owner, "config": self.settings.source,
            "rules": {r.id: r.version for r in self.rules.rules},
            "last_reload": self.last_reload,
            "last_poll": None if p is None else {
                "feeds": len(p.outcomes), "ok": p.ok, "failed": p.failed,
                "new_items": p.new_items, "new_hits": p.new_hits,
                "seconds": round(p.seconds, 2)},
        })

    def _start_metrics(self, settings: Settings) -> None:
        if not settings.metrics_listen:
            return
        try:
            from monitor.metrics import Metrics

            host, _, port = settings.metrics_listen.rpartition(":")
            metrics = Metrics()
            metrics.serve(host.strip("[]"), int(port))
        except (ImportError, OSError, ValueError) as e:
            log.error("metrics endpoint %s not started: %s", settings.metrics_listen, e)
            return
        self.metrics = metrics

    def _metrics_ready(self) -> None:
        """The store is open and the rules loaded: the gauges read the store, ready."""
        if self.metrics is None:
            return

        def source() -> tuple[Settings, Store]:
            with self._lock:
                return self.settings, self.store

        self.metrics.store.attach(source)
        self.metrics.ready()


def _warn_no_desks(settings: Settings) -> None:
    # The embedded default has no desk: a first run must not look as if it would alert.
    if not settings.desks:
        log.warning("no [[desks]]: hits are stored but nothing is sent; "
                    "`news-monitor init` writes a configuration with a desk")


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a rule file is saved, added or removed."""
    try:
        entries = rule_files(directory)
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in entries)
    except OSError:
        return ()


def _redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
