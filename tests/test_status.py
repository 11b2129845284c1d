"""The status document (monitor.status), read from a real store: what
``news-monitor status --format json`` prints and the web view will show; and
the daemons it lists, by their heartbeats (real daemons, SIGKILLed)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon
from procenv import cli_env
from waiting import wait_until

from monitor import __version__
from monitor.config import parse_settings
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity, isoformat_z
from monitor.rules import shipped_rules_dir
from monitor.status import (
    HEARTBEAT_ENV,
    STALE_AFTER_BEATS,
    heartbeat_interval,
    is_fresh,
    running_daemons,
    stale_daemon_keys,
    status_document,
)
from monitor.store import Store

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
POLLED, FAILING, NEW = ("https://a.example/rss", "https://b.example/rss",
                        "https://c.example/rss")


def test_the_document_has_every_configured_feed_and_the_totals(store: Store,
                                                                tmp_path: Path) -> None:
    settings = parse_settings(
        f'[[feeds]]\nurl = "{POLLED}"\n[[feeds]]\nurl = "{FAILING}"\nname = "Bee"\n'
        f'[[feeds]]\nurl = "{NEW}"\n[[desks]]\nname = "energy"\n'
        'webhook_url = "https://hooks.example.org/x"\n', "monitor.toml", base=tmp_path)
    store.register_desks(["energy"], T0 - timedelta(hours=1))  # before the hit: it is owed
    store.sync_feeds([(POLLED, None), (FAILING, None)])
    item = Item(POLLED, "g1", "CPC halts loadings", "", None, T0, "en", "fp")
    store.commit_poll(FeedState(POLLED, last_polled=T0, last_status="304", title="Feed A"),
                      [NewItem(item, (Match("cpc-disruption", 90.0,
                                            (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),))],
                      {"cpc-disruption": ("v1", Severity.HIGH)}, T0)
    store.save_feed_states([FeedState(FAILING, last_polled=T0, last_status="timeout",
                                      error="timed out", failures=2, next_poll=T0)])
    now = datetime.now(UTC)
    alive = {"pid": 1, "host": "host", "version": "1.0", "started": isoformat_z(now),
             "last_seen": isoformat_z(now), "heartbeat": 15.0, "owner": "host:1",
             "rules": {"cpc-disruption": "v1"}}
    store.put_state("daemon:host:1", alive)
    store.put_state("daemon:host:2", {**alive, "pid": 2, "owner": "host:2",  # died
                                      "last_seen": isoformat_z(now - timedelta(minutes=1))})
    store.put_state("daemon:host:3", {"owner": "host:3"})  # an old row: no heartbeat at all
    doc = status_document(settings, store)
    assert list(doc) == ["feeds", "items", "hits", "pending_deliveries", "retrying", "failed",
                         "daemons", "store"]
    a, b, c = doc["feeds"]
    assert (a["name"], a["items"], a["last_polled"], a["last_status"]) == (
        "Feed A", 1, "2026-03-04T05:06:07Z", 304)  # the feed's title; a status code as a number
    assert (b["name"], b["last_status"], b["error"], b["failures"], b["next_poll"]) == (
        "Bee", "timeout", "timed out", 2, "2026-03-04T05:06:07Z")
    assert c == {"url": NEW, "name": NEW, "items": 0, "last_polled": None, "last_status": None,
                 "error": None, "failures": 0, "next_poll": None, "disabled": None,
                 "flag": None, "article_failures": 0,
                 "article_error": None}  # never polled: its URL stands in for a name
    assert (doc["items"], doc["hits"], doc["pending_deliveries"]) == (1, 1, 1)
    assert (doc["retrying"], doc["failed"]) == ([], [])
    assert doc["daemons"] == [alive]  # only the daemon whose heartbeat is fresh
    assert doc["store"] == {"ok": True, "writable": None, "error": None, "since": None,
                            "daemon": None}  # not probed: the daemons' word
    assert json.loads(json.dumps(doc)) == doc


def test_a_daemon_is_running_while_its_heartbeat_is_fresh() -> None:
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

    def row(age: float, every: float | None = 15.0) -> dict[str, object]:
        seen = isoformat_z(now - timedelta(seconds=age))
        return {"last_seen": seen} if every is None else {"last_seen": seen, "heartbeat": every}

    window = STALE_AFTER_BEATS * 15.0
    assert is_fresh(row(0), now) and is_fresh(row(window), now)
    assert not is_fresh(row(window + 1), now)
    assert is_fresh(row(window, every=None), now)  # the default interval
    assert is_fresh(row(4), now) and not is_fresh(row(4, every=1.0), now)  # its own interval
    for broken in (None, {}, {"owner": "x"}, {"last_seen": "yesterday"},
                   {"last_seen": isoformat_z(now), "heartbeat": "often"}):
        assert not is_fresh(broken, now)


def test_the_heartbeat_interval_can_be_set_for_one_daemon(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    assert heartbeat_interval() == 15.0
    for text, seconds in (("2s", 2.0), ("1m", 60.0), ("0.5", 0.5), ("0", 0.1),
                          ("soon", 15.0)):
        monkeypatch.setenv(HEARTBEAT_ENV, text)
        assert heartbeat_interval() == seconds, text


def test_stale_daemon_rows_are_found_and_deleted(store: Store) -> None:
    now = datetime.now(UTC)
    fresh = {"pid": 1, "started": isoformat_z(now - timedelta(hours=1)),
             "last_seen": isoformat_z(now), "heartbeat": 15.0}
    store.put_state("daemon:a:1", fresh)
    store.put_state("daemon:a:2", {**fresh, "pid": 2,
                                   "last_seen": isoformat_z(now - timedelta(minutes=5))})
    store.put_state("daemon:a:3", None)  # as a clean stop left it before heartbeats
    store.put_state("digest:energy", "2026-03-04T05:06:07+00:00")  # not a daemon
    assert [d["pid"] for d in running_daemons(store)] == [1]
    stale = stale_daemon_keys(store)
    assert stale == ["daemon:a:2", "daemon:a:3"]
    assert store.delete_states(stale) == 2
    assert store.delete_states([]) == 0
    assert list(store.states("daemon:")) == ["daemon:a:1"]
    assert store.get_state("digest:energy") is not None


@pytest.mark.slow
def test_a_killed_daemon_leaves_status_and_the_next_one_removes_its_row(
        tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), rules)
    config = tmp_path / "monitor.toml"
    config.write_text('[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n')
    env = cli_env()
    env[HEARTBEAT_ENV] = "1s"  # stale after STALE_AFTER_BEATS (3) seconds without a beat
    first = Daemon(config, env, log="first.log")
    second: Daemon | None = None
    try:
        def listed(d: Daemon) -> list[dict[str, Any]]:
            return [x for x in d.status()["daemons"] if x["pid"] == d.proc.pid]

        first.wait_for("the first daemon in status", lambda: listed(first))
        (row,) = listed(first)
        assert row["host"] == socket.gethostname() and row["version"] == __version__
        assert isinstance(row["started"], str) and isinstance(row["last_seen"], str)
        first.wait_for("a heartbeat", lambda: [x["last_seen"] for x in listed(first)]
                       not in ([], [row["last_seen"]]))

        # A rejected reload shows while the daemon lives...
        broken = rules / "cpc-disruption.yaml"
        good = broken.read_text()
        broken.write_text(good.replace("severity:", "severity: urgent\nx:"))
        first.wait_for("the rejected reload in status", lambda: any(
            (x.get("last_reload") or {}).get("ok") is False for x in listed(first)))
        table = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                                "status"], capture_output=True, text=True, env=env, timeout=60)
        assert "REJECTED" in table.stdout and f":{first.proc.pid} (" in table.stdout

        # ...and goes with it: SIGKILLed, it leaves no trace but a stale row.
        first.proc.kill()
        first.proc.wait(timeout=10)
        broken.write_text(good)
        wait_until(lambda: first.status()["daemons"] == [], "the dead daemon to leave status",
                   timeout=30)
        table = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                                "status"], capture_output=True, text=True, env=env, timeout=60)
        assert "REJECTED" not in table.stdout and "daemon " not in table.stdout
        dead_key = f"daemon:{socket.gethostname()}:{first.proc.pid}"
        assert dead_key in _daemon_rows(tmp_path)

        # The next daemon's housekeeping deletes the dead one's row.
        second = later = Daemon(config, env, log="second.log")
        later.wait_for("the stale row deleted", lambda: dead_key not in _daemon_rows(tmp_path))
        assert "removed the status of" in later.stderr()
        later.wait_for("the second daemon in status", lambda: listed(later))

        # A clean stop takes its own row with it.
        later.proc.send_signal(signal.SIGTERM)
        assert later.proc.wait(timeout=10) == 0
        assert _daemon_rows(tmp_path) == []
    finally:
        for d in (first, second):
            if d is not None and d.proc.poll() is None:
                d.proc.kill()


def _daemon_rows(folder: Path) -> list[str]:
    db = folder / "state" / "monitor.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [k for (k,) in conn.execute("SELECT key FROM daemon_state "
                                           "WHERE key LIKE 'daemon:%'")]
