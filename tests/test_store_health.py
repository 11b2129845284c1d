"""The store's own health, told: a job's repeated failures are logged once when
they start and once when they end (monitor.log.Repeats), ``status`` probes a
write and exits 1 when the store takes none or a daemon says its writes fail,
and the daemon's heartbeat row and metrics say since when. The store that
fails is real: SQLite, write-locked by another connection."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import urlopen

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from prometheus_client import generate_latest

from monitor.config import parse_settings
from monitor.errors import StorageError
from monitor.log import Repeats
from monitor.metrics import Metrics
from monitor.models import isoformat_z
from monitor.rules import shipped_rules_dir
from monitor.status import status_document
from monitor.store import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.db"
    Store.open(f"sqlite:///{path}").close()
    return path


@contextlib.contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Another process's write transaction: reads go on, writes wait and fail."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeated_failures_are_one_error_then_one_recovery_line(
        db: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(f"sqlite:///{db}", timeout=0.01)
    clock = Clock()
    repeats = Repeats(logging.getLogger("test.jobs"), clock=clock, wall=lambda: 1.7e9)
    caplog.set_level(logging.DEBUG, "test.jobs")
    try:
        with write_locked(db):
            for run in range(37):
                if run < 3:  # the real failure, a few times (each waits out the timeout)
                    with pytest.raises(StorageError) as failure:
                        store.put_state("x", 1)
                outage = repeats.failed("poll", failure.value)
                clock.now += 3.0
        assert (outage.runs, outage.kind, outage.since) == (37, "StorageError", 1.7e9)
        assert repeats.active() == [outage]
        store.put_state("x", 1)
        clock.now += 1.0
        assert repeats.ok("poll") == outage
        assert repeats.ok("poll") is None  # one recovery line, then nothing
    finally:
        store.close()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("ERROR", "poll: database error: database is locked")
    assert [level for level, _ in lines[1:-1]] == ["DEBUG"] * 36
    assert lines[-1] == ("INFO", "poll: recovered after 37 failed runs in 1m52s "
                                 "(last error: database error: database is locked)")
    assert repeats.active() == []


def test_a_new_kind_of_error_in_an_outage_is_told(caplog: pytest.LogCaptureFixture) -> None:
    repeats = Repeats(logging.getLogger("test.jobs"), clock=Clock())
    caplog.set_level(logging.INFO, "test.jobs")
    repeats.failed("digest:energy", StorageError("database error: database is locked"))
    repeats.failed("digest:energy", StorageError("database error: database is locked"))
    repeats.failed("digest:energy", OSError("no route to host"))
    repeats.ok("digest:energy")
    assert [r.getMessage() for r in caplog.records] == [
        "digest:energy: database error: database is locked",
        "digest:energy: still failing (3 runs), now: no route to host",
        "digest:energy: recovered after 3 failed runs in 0s (last error: no route to host)"]


def test_status_probes_a_write_and_reads_the_daemons_word(db: Path, tmp_path: Path) -> None:
    settings = parse_settings("", "monitor.toml", base=tmp_path)
    store = Store.open(f"sqlite:///{db}", timeout=0.01)
    try:
        doc = status_document(settings, store, probe=True)
        assert doc["store"] == {"ok": True, "writable": True, "error": None, "since": None,
                                "daemon": None}
        with write_locked(db):
            doc = status_document(settings, store, probe=True)  # the reads still work
        assert doc["store"] == {"ok": False, "writable": False, "since": None, "daemon": None,
                                "error": "database error: database is locked"}
        now = isoformat_z(datetime.now(UTC))
        store.put_state("daemon:h:7", {
            "pid": 7, "host": "h", "last_seen": now, "heartbeat": 15.0,
            "store": {"ok": False, "since": "2026-03-04T05:06:07Z", "failed_runs": 9,
                      "error": "poll: database error: database or disk is full"}})
        doc = status_document(settings, store, probe=True)
        assert doc["store"] == {"ok": False, "writable": True, "daemon": "h:7",
                                "since": "2026-03-04T05:06:07Z",
                                "error": "poll: database error: database or disk is full"}
    finally:
        store.close()


def test_the_metrics_say_since_when_the_store_fails() -> None:
    m = Metrics()
    text = generate_latest(m.registry).decode()
    assert "news_monitor_store_writable 1.0" in text
    assert "news_monitor_store_unwritable_since_seconds 0.0" in text
    assert "news_monitor_store_write_errors_total 0.0" in text
    m.store_write_failed()
    m.store_health(1.7e9)
    text = generate_latest(m.registry).decode()
    assert "news_monitor_store_writable 0.0" in text
    assert "news_monitor_store_unwritable_since_seconds 1.7e+09" in text
    assert "news_monitor_store_write_errors_total 1.0" in text
    m.store_health(None)
    text = generate_latest(m.registry).decode()
    assert "news_monitor_store_writable 1.0" in text
    assert "news_monitor_store_unwritable_since_seconds 0.0" in text


@pytest.mark.slow
def test_status_exits_1_naming_the_error_when_the_store_takes_no_write(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[storage]\nurl = "sqlite:///monitor.db"\ntimeout = "1s"\n')
    Store.open(f"sqlite:///{tmp_path / 'monitor.db'}").close()

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                               "status", *args], capture_output=True, text=True,
                              env=cli_env(), timeout=60)

    assert status().returncode == 0
    with write_locked(tmp_path / "monitor.db"):
        table, doc = status(), status("--format", "json")
    assert table.returncode == 1 and doc.returncode == 1
    assert "store: not writable: database error: database is locked" in table.stdout
    assert '"writable": false' in doc.stdout
    assert status().returncode == 0


@pytest.mark.slow
def test_a_daemon_logs_an_outage_once_and_its_end_once(feed_server: FeedServer,
                                                       tmp_path: Path) -> None:
    from servers import free_port

    for i in range(3):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, 5))
    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///state/monitor.db"\ntimeout = "1s"\n'
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        + "".join(f'[[feeds]]\nurl = "{feed_server.url(f"/f{i}.xml")}"\ninterval = "1s"\n'
                  for i in range(3)))
    env = cli_env()
    env["NEWS_MONITOR_HEARTBEAT"] = "0.5s"
    daemon = Daemon(config, env)
    db = tmp_path / "state" / "monitor.db"
    try:
        daemon.wait_for("the first poll", lambda: daemon.stored_hits() > 0, timeout=60)
        with write_locked(db):
            daemon.wait_for("ten failed runs", lambda: _metric(
                port, "news_monitor_store_write_errors_total") >= 10, timeout=30)
            assert _metric(port, "news_monitor_store_writable") == 0
        daemon.wait_for("the recovery", lambda: "poll: recovered after" in daemon.stderr(),
                        timeout=30)
        daemon.wait_for("the gauge back", lambda: _metric(
            port, "news_monitor_store_writable") == 1)
        log = daemon.stderr().splitlines()
        errors = [line for line in log if " ERROR " in line]
        assert len([line for line in errors if ": poll: " in line]) == 1, "\n".join(log)
        assert len(errors) <= 3, "\n".join(log)  # poll, status, alerts: each once
        (line,) = [line for line in log if "poll: recovered after" in line]
        assert re.search(r"poll: recovered after \d+ failed runs in \d+s \(last error: "
                         r"database error: database is locked\)$", line), line
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(timeout=20)


def _metric(port: int, name: str) -> float:
    try:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:  # not listening yet
        return -1.0
    (value,) = re.findall(rf"^{name} (\S+)$", text, re.M)
    return float(value)
