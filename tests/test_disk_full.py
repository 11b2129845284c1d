"""A really full disk: the SQLite store on a tmpfs of a few MiB, filled with a
ballast file until writes fail. The poll fails cleanly and the database stays
sound; once a little room is freed (1 MiB), the next poll stores everything,
once. The daemon says so: one ERROR when its writes start failing, the store
"not ok, since" in ``status`` (exit 1) and in the metrics, one INFO line when
it recovers.

Needs root (to mount); skipped otherwise, or when the mount fails."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from waiting import wait_until

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts processes

SIZE = 4 * 1024 * 1024  # the tmpfs: the state folder of the run
FREED = 1024 * 1024  # what is given back after the disk filled
GROW = (40, 60, 80)
ROOM = 128 * 1024  # left free while the disk is "full": the store opens, its writes fail
FEEDS, ENTRIES, MORE = 12, 20, 40  # the second round of entries: ~0.4 MiB to store


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of :data:`SIZE` bytes, mounted for the test and unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "state"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """A ballast file that takes every free byte of the file system."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 4096, 512, 1):  # to the last byte
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return ballast


def free(ballast: Path, nbytes: int) -> None:
    os.truncate(ballast, max(0, ballast.stat().st_size - nbytes))


def write_config(server: FeedServer, tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///state/monitor.db"\n{extra}\n'
        f'[rules]\ndir = "{shipped_rules_dir()}"\n'
        + "".join(f'[[feeds]]\nurl = "{server.url(f"/f{i}.xml")}"\ninterval = "1s"\n'
                  for i in range(FEEDS)))
    return config


def publish(server: FeedServer, count: int) -> None:
    for i in range(FEEDS):
        server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, count))


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, env=cli_env(), timeout=120,
                          cwd=config.parent)


def counts(db: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        got: tuple[int, int] = conn.execute(
            "SELECT count(*), count(DISTINCT feed_id || ' ' || guid) FROM items").fetchone()
        return got


def stored(db: Path, want: int) -> Callable[[], bool]:
    return lambda: counts(db)[0] == want


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_poll_on_a_full_disk_fails_cleanly_and_the_next_stores_everything_once(
        feed_server: FeedServer, tmp_path: Path, small_disk: Path) -> None:
    publish(feed_server, ENTRIES)
    config = write_config(feed_server, tmp_path)
    first = cli(config, "poll")
    assert first.returncode == 0, first.stderr
    db = small_disk / "monitor.db"
    ballast = fill(small_disk)
    filled = ballast.stat().st_size
    free(ballast, ROOM)  # enough to open the store (its -shm and -wal), not to poll
    publish(feed_server, MORE)
    full = cli(config, "poll")
    assert full.returncode == 1, full.stdout + full.stderr
    assert "database or disk is full" in full.stderr and "Traceback" not in full.stderr
    assert integrity(db) == "ok"
    free(ballast, FREED)
    started = time.monotonic()
    again = cli(config, "poll")
    took = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert counts(db) == (FEEDS * MORE,) * 2
    assert integrity(db) == "ok"
    print(f"tmpfs {SIZE} B, ballast {filled} B, {ROOM} B left, freed {FREED} B: "
          f"the first poll after took {took:.2f}s; "
          f"wal {_size(small_disk / 'monitor.db-wal')} B")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _metric(port: int, name: str) -> float:
    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    (value,) = re.findall(rf"^{name} (\S+)$", text, re.M)
    return float(value)


def _status(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "status",
                           *args], capture_output=True, text=True, env=env, timeout=60)


def test_a_daemon_on_a_full_disk_says_so_once_and_recovers_when_a_little_room_is_free(
        feed_server: FeedServer, tmp_path: Path, small_disk: Path) -> None:
    from servers import free_port

    publish(feed_server, ENTRIES)
    port = free_port()
    config = write_config(feed_server, tmp_path, f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    env = cli_env()
    env["NEWS_MONITOR_HEARTBEAT"] = "1s"
    db = small_disk / "monitor.db"
    daemon = Daemon(config, env)
    try:
        daemon.wait_for("the first items stored",
                        lambda: db.exists() and counts(db)[0] == FEEDS * ENTRIES, timeout=60)
        for n in GROW:  # the WAL grows (a daemon keeps it open: nothing truncates it)
            publish(feed_server, n)
            daemon.wait_for(f"{n} items a feed", stored(db, FEEDS * n), timeout=60)
        wal = _size(small_disk / "monitor.db-wal")
        print(f"\nwal before: {wal} B, db {_size(db)} B")
        ballast = fill(small_disk)
        filled = ballast.stat().st_size
        free(ballast, ROOM)
        publish(feed_server, MORE + GROW[-1])
        daemon.wait_for("the poll to fail", lambda: "poll: database error" in daemon.stderr(),
                        timeout=60)
        failing = time.time()
        # The store's health is told: by status (its own small write may still fit
        # in the room left, the daemon's heartbeat says what failed and since when)...
        daemon.wait_for("status to tell", lambda: _status(config, env).returncode == 1)
        table = _status(config, env)
        assert re.search(r"^store: (not writable|failing for daemon \S+ since \S+Z): .*"
                         r"database or disk is full$", table.stdout, re.M), table.stdout
        doc = json.loads(_status(config, env, "--format", "json").stdout)
        assert doc["store"]["ok"] is False and "disk is full" in doc["store"]["error"]
        # ...and by the metrics, naming since when.
        daemon.wait_for("the metrics to tell", lambda: _metric(
            port, "news_monitor_store_writable") == 0)
        since = _metric(port, "news_monitor_store_unwritable_since_seconds")
        assert failing - 60 < since <= failing
        assert _metric(port, "news_monitor_store_write_errors_total") >= 1
        # Several failed runs, and still the one ERROR line.
        wait_until(lambda: _metric(port, "news_monitor_store_write_errors_total") >= 6,
                   "six failed runs", timeout=60, detail=daemon.stderr)
        assert integrity(db) == "ok"

        free(ballast, FREED)
        freed = time.monotonic()
        daemon.wait_for("the recovery", lambda: counts(db)[0] == FEEDS * (MORE + GROW[-1]),
                        timeout=60)
        took = time.monotonic() - freed
        daemon.wait_for("the recovery line", lambda: "poll: recovered after" in daemon.stderr())
        assert counts(db) == (FEEDS * (MORE + GROW[-1]),) * 2
        daemon.wait_for("the metrics to clear", lambda: _metric(
            port, "news_monitor_store_writable") == 1)
        assert _metric(port, "news_monitor_store_unwritable_since_seconds") == 0
        daemon.wait_for("status to clear", lambda: _status(config, env).returncode == 0)
        log = daemon.stderr()
        errors = [line for line in log.splitlines() if " ERROR " in line]
        poll_errors = [line for line in errors if ": poll: " in line]
        assert len(poll_errors) == 1, log
        assert len(errors) <= 4, log  # poll, status (heartbeat), alerts...: each once
        (recovered,) = [line for line in log.splitlines() if "poll: recovered after" in line]
        assert re.search(r"recovered after \d+ failed runs in \d+[ms]", recovered), recovered
        print(f"\ntmpfs {SIZE} B, ballast {filled} B, {ROOM} B left, freed {FREED} B: "
              f"all stored {took:.2f}s after; wal {_size(small_disk / 'monitor.db-wal')} B\n"
              + "\n".join(line for line in log.splitlines()
                          if "ERROR" in line or "recovered" in line))
    finally:
        daemon.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(timeout=15)
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
