"""``news-monitor run``: the scheduler that wires polls, digests and alerts together.

Wiring only: APScheduler 3.x triggers the pipeline's poll of due feeds, each
desk's digest at its cron time in its time zone, the alert and retry drain,
the rules watcher and housekeeping. The work itself lives in
:mod:`monitor.pipeline` and :mod:`monitor.deliver`. Jobs never send: they hand
each (desk, channel) queue its pass (alerts, retries, digest, notice) to
:class:`monitor.deliver.Senders`, a few worker threads, so a receiver that
answers late holds back only its own queue, and polling never waits for a send.

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

Failures: a job whose run fails on a :class:`~monitor.errors.MonitorError` (the
store down, locked or full) logs one ERROR when the failures start and one INFO
line when a run works again, with how many runs failed and for how long
(:class:`monitor.log.Repeats`). While any job fails on a
:class:`~monitor.errors.StorageError` the store is "not ok" since the first
such failure: the heartbeat row says so (``store``: ``ok``, ``since``,
``error``) whenever it can be written, and so do the metrics
(``news_monitor_store_writable``).

Signals: SIGTERM/SIGINT stop (work in flight is finished or rolled back, exit
0 within 10 s; a send still under way after :data:`STOP_DEADLINE` is left to
its lease, and goes out once more later); SIGHUP reloads configuration and
rules, keeping the last good set when either is broken.

The last good set survives a restart: after every clean start and reload the
daemon keeps a copy of the files it loaded (:mod:`monitor.lastgood`); started
on a broken configuration or rule file it logs each problem and runs on that
copy (``status`` and ``news_monitor_config_last_reload_successful 0`` say so)
until a reload takes the fixed files. With no copy (a first start), a broken
file still fails the start.
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

from monitor import __version__, lastgood, memory, sdnotify, status
from monitor.config import load_settings
from monitor.errors import ConfigError, MonitorError, Problem, RuleFileError, StorageError
from monitor.log import Outage, Repeats
from monitor.match import Matcher
from monitor.models import isoformat_z
from monitor.pipeline import Poller, PollReport
from monitor.rules import RuleSet, load_rules, rule_files
from monitor.settings import (
    Settings,
    config_path,
    idle_desks,
    redact_url,
    unreadable_secrets,
    validate_desk_rules,
)
from monitor.store import Store
from monitor.timespec import parse_cron

if TYPE_CHECKING:
    from monitor.deliver import Deliverer, DeliveryReport, Senders
    from monitor.metrics import Metrics
    from monitor.web import WebServer

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
        self.web: WebServer | None = None
        # Set while running on the last good copy: {"saved", "folder", "problems"}.
        self.on_copy: dict[str, object] | None = None
        self.repeats = Repeats(log)  # each job's failures: logged when they start and end
        self.senders: Senders | None = None  # made in run(): deliver loads late

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

    def _last_good(self, problems: tuple[Problem, ...]) -> tuple[Settings, RuleSet] | None:
        """The last good copy's configuration and rules, when the files are broken
        (``problems``, already logged); None when there is no usable copy."""
        where = lastgood.folder(self.config)
        path = config_path(self.config)
        try:
            copy = lastgood.find(where, path)
        except (OSError, ValueError) as e:
            log.error("the last good copy cannot be read: %s", e)
            return None
        if copy is None:  # a first start: nothing to fall back on, the start fails
            return None
        try:
            settings, rules = lastgood.load(copy, lastgood.DEFAULT_SOURCE if path is None
                                            else str(path))
        except (ConfigError, RuleFileError) as e:
            for p in e.problems:
                log.error("the last good copy of %s (%s): %s", copy.saved_text, copy.folder, p)
            return None
        log.error("running on the last good copy of the configuration and rules, of %s "
                  "(%s): fix the files above (`news-monitor check`), then reload",
                  copy.saved_text, copy.folder)
        self.on_copy = {"saved": copy.saved_text, "folder": str(copy.folder),
                        "problems": [str(p) for p in problems]}
        return settings, rules

    def _keep(self, settings: Settings, rules: RuleSet) -> None:
        """Keep the files just loaded as the last good copy, for a restart on a broken file."""
        where = lastgood.folder(self.config)
        try:
            kept = lastgood.save(where, settings, rules)
        except OSError as e:
            log.warning("cannot keep a copy of the configuration and rules in %s: %s; "
                        "a restart on a broken file would fail", where, e)
            return
        if kept is None:
            log.info("a file changed while it was loaded: its copy is kept at the next reload")

    def _apply(self, settings: Settings, rules: RuleSet) -> None:
        from monitor.deliver import Deliverer

        with self._lock:
            self.settings = settings
            self.rules = rules
            self.poller = Poller(settings, self.store, Matcher(rules), owner=self.owner)
            self.deliverer = Deliverer(settings, self.store, rules, owner=self.owner,
                                       stop=self.stop)
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
            fallback = self._last_good(e.problems)
            if fallback is None:
                return 1
            settings, rules = fallback
        self._start_metrics(settings)  # health probes answer while the store opens
        if self.metrics is not None and self.on_copy is not None:
            self.metrics.reloaded(False)
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
        from monitor.deliver import Senders

        self.senders = Senders()
        self._release_dead_leases()
        self._apply(settings, rules)
        if self.on_copy is None:
            self._keep(settings, rules)
        self._metrics_ready()
        self._start_web(settings)
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
        # Sends not started are dropped (nothing is claimed before a pass starts);
        # those under way finish, or are left to their lease: each then goes out
        # once more later, the crash bound.
        if self.senders is not None and not self.senders.close(STOP_DEADLINE):
            log.warning("sends still under way after %.0fs (%s); leaving them: each goes "
                        "out once more when its lease runs out", STOP_DEADLINE,
                        ", ".join(f"{d}/{c}" for d, c in sorted(self.senders.busy())))
        left = max(0.0, STOP_DEADLINE - (time.monotonic() - started))
        if not done.wait(left):
            log.warning("jobs still running after %.0fs; leaving them (their transactions "
                        "roll back)", STOP_DEADLINE)
        if self.metrics is not None:
            self.metrics.close()  # no scrape reads the store once it is closed
        if self.web is not None:
            self.web.stop()  # no page reads the store once it is closed
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
        """Run a job's work; a store outage fails this run only. Repeated failures
        of ``name`` are logged when they start and when they end."""
        if self.stop.is_set():
            return None
        try:
            result = work()
        except MonitorError as e:
            self.repeats.failed(name, e)
            if isinstance(e, StorageError):
                if self.metrics is not None:
                    self.metrics.store_write_failed()
                self._store_health_changed()
            return None
        ended = self.repeats.ok(name)
        if ended is not None and ended.kind == StorageError.__name__:
            self._store_health_changed()
        return result

    def store_outage(self, *, besides: str | None = None) -> Outage | None:
        """The oldest job outage due to the store (but ``besides``'s), or None."""
        for outage in self.repeats.active():
            if outage.kind == StorageError.__name__ and outage.key != besides:
                return outage
        return None

    def _store_health_changed(self) -> None:
        if self.metrics is not None:
            outage = self.store_outage()
            self.metrics.store_health(None if outage is None else outage.since)

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
            self._hand_alerts()  # to the senders: polling never waits for a send
        self.notify.status(self._status_line())
        self._guard("status", self._publish)

    def _job_alerts(self) -> None:
        """Hand each queue its alert and retry passes; they run on the senders."""
        self._hand_alerts()
        with self._lock:
            queues = self.deliverer.queues()
        for desk, channel in queues:
            self._send((desk, channel), "retries", lambda d, k: d.retry_due(*k))

    def _hand_alerts(self) -> None:
        with self._lock:
            queues = self.deliverer.queues(alerting=True)
        for desk, channel in queues:
            self._send((desk, channel), "alerts", lambda d, k: d.send_alerts(*k))

    def _job_digest(self, desk: str) -> None:
        with self._lock:
            queues = [q for q in self.deliverer.queues() if q[0] == desk]

        def done() -> None:  # for the catch-up at start: this digest's time was served
            self.store.put_state(f"digest:{desk}", datetime.now(UTC).isoformat())

        def digest(d: Deliverer, key: tuple[str, str]) -> DeliveryReport:
            report = d.send_digests(*key)
            done()
            return report

        if not queues:
            self._guard(f"digest:{desk}", done)
        for key in queues:
            self._send(key, "digest", digest, name=f"digest:{desk}")

    def _send(self, key: tuple[str, str], kind: str,
              run: Callable[[Deliverer, tuple[str, str]], DeliveryReport], *,
              name: str | None = None) -> None:
        """Hand one pass of queue ``key`` to the senders, run with the Deliverer of
        the moment (a reload may come first); a pass of that kind already waiting
        there covers this one."""
        def work() -> None:
            with self._lock:
                deliverer = self.deliverer
            if deliverer.settings.desk(key[0]) is None:
                return  # the desk went with a reload
            self._count(self._guard(name or kind, lambda: run(deliverer, key)))

        if self.senders is not None:
            self.senders.submit(key, kind, work)

    def _count(self, report: DeliveryReport | None) -> None:
        if report is not None and self.metrics is not None:
            self.metrics.observe_deliveries(report.sent, report.failed)

    def _notice(self, text: str) -> None:
        """An ops notice to the desks that opted in (``ops_notices = true``)."""
        with self._lock:
            settings = self.settings
        for desk in settings.desks:
            if desk.ops_notices:
                for channel in desk.channels:
                    self._send((desk.name, channel), f"notice:{text}",
                               lambda d, k: d.send_notice(text, *k), name="notice")

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
        with self._lock:
            deliverer = self.deliverer
        self._count(self._guard("housekeeping", deliverer.give_up_orphans))
        if settings.retention_items is not None:
            before = datetime.now(UTC) - timedelta(seconds=settings.retention_items)
            removed = self._guard("housekeeping", lambda: self.store.purge_items(before))
            if removed:
                log.info("housekeeping: removed %d items older than %s", removed,
                         before.date().isoformat())
        self._sweep_daemons()

    def _release_dead_leases(self) -> None:
        """Free the leases of this host's instances whose process is gone (killed,
        crashed): a restart after ``kill -9`` polls and sends at once instead of
        when their leases run out (a few minutes). Another host's are left to expire:
        only here can a process be known dead."""
        host = socket.gethostname()

        def dead(owner: str) -> bool:
            name, _, pid = owner.rpartition(":")
            if name != host or not pid.isdigit() or int(pid) == os.getpid():
                return False
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except OSError:  # it exists, another user's
                return False
            return False

        try:
            owners = sorted(o for o in self.store.lease_owners() if dead(o))
            released = self.store.release_leases(owners)
        except MonitorError as e:  # they expire in their time
            log.warning("cannot release the leases of dead instances: %s", e)
            return
        if owners:
            log.info("released the leases of %s (no such process on this host): %d feeds, "
                     "%d deliveries", ", ".join(owners), *released)

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
        if self.on_copy is not None:
            rules_only = False  # on the copy: the operator's configuration is read again too
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
            copy = self.on_copy
            log.error("keeping the last good configuration and rules (%s)%s",
                      ", ".join(self.rules.ids),
                      "" if copy is None else f": the copy of {copy['saved']}")
            if copy is not None:
                self.on_copy = {**copy, "problems": [str(p) for p in e.problems]}
            self.last_reload = {"at": when.isoformat(), "ok": False, "reason": reason,
                                "errors": [str(p) for p in e.problems]}
            if self.metrics is not None:
                self.metrics.reloaded(False)
            self.notify.ready(self._status_line())
            self._guard("status", self._publish)
            return False
        if settings.storage_url != self.settings.storage_url:
            log.warning("storage.url changed: that takes a restart; keeping %s",
                        redact_url(self.settings.storage_url))
        self._apply(settings, rules)
        if self.on_copy is not None:
            log.info("the fixed files are loaded: no longer on the last good copy of %s",
                     self.on_copy["saved"])
            self.on_copy = None
        self._keep(settings, rules)
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
        copy = "" if self.on_copy is None else \
            f"; on the last good copy of {self.on_copy['saved']} (the files are broken)"
        return f"{len(self.settings.feeds)} feeds, {len(self.rules.rules)} rules{polled}{copy}"

    def _publish(self) -> None:
        p = self.last_poll
        # Written, this row proves the heartbeat's own write works: only the
        # other jobs' failures are news.
        outage = self.store_outage(besides="status")
        store: dict[str, object] = {"ok": True} if outage is None else {
            "ok": False, "since": isoformat_z(datetime.fromtimestamp(outage.since, UTC)),
            "error": f"{outage.key}: {outage.error}", "failed_runs": outage.runs}
        self.store.put_state(f"daemon:{self.owner}", {
            "pid": os.getpid(), "host": socket.gethostname(), "version": __version__,
            "started": isoformat_z(self.started), "last_seen": isoformat_z(datetime.now(UTC)),
            "heartbeat": self.heartbeat, "owner": self.owner, "config": self.settings.source,
            "rules": {r.id: r.version for r in self.rules.rules},
            "last_reload": self.last_reload, "last_good_copy": self.on_copy, "store": store,
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

    def _start_web(self, settings: Settings) -> None:
        """The web view in a thread, when ``[web] listen`` is set. A view that cannot
        start (no authentication off loopback, the address taken) is logged; the
        daemon polls and sends without it. (A reload keeps the address it started
        on: a new ``[web]`` table takes a restart.)"""
        if not settings.web_listen:
            return
        try:
            from monitor.web import WebServer, split_listen
            from monitor.web.app import View
            from monitor.web.auth import listen_problem, read_passwords

            host, port = split_listen(settings.web_listen)
            users = (read_passwords(settings.web_passwords)
                     if settings.web_passwords is not None else None)
            refused = listen_problem(host, port, bool(users))
            if refused:
                log.error("%s", refused)
                return

            def source() -> View:
                with self._lock:
                    return View(self.settings, self.rules, self.store)

            web = WebServer(source, host, port, users=users)
            web.start()
        except (ImportError, OSError, ValueError) as e:
            log.error("web view on %s not started: %s", settings.web_listen, e)
            return
        self.web = web
        log.info("web view on http://%s/", settings.web_listen)

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
        return tuple((p.name, st.st_mtime_ns, st.st_size)
                     for p in entries for st in (p.stat(),))
    except OSError:
        return ()
