"""Faults: a poll killed with SIGKILL, a locked store, a full disk. Nothing is lost,
nothing is stored twice, and the next run succeeds."""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from waiting import wait_until

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process

FEEDS, ENTRIES = 24, 20


def config_for(server: FeedServer, tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n{extra}\n'
        f'[rules]\ndir = "{shipped_rules_dir()}"\n[poll]\nconcurrency = 4\nper_host = 4\n'
        + "".join(f'[[feeds]]\nurl = "{server.url(f"/f{i}.xml")}"\n' for i in range(FEEDS)))
    return config


def poll(config: Path, preexec_fn: Callable[[], object] | None = None
         ) -> subprocess.Popen[str]:
    env = cli_env()
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "poll"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=preexec_fn)


def counts(db: Path) -> tuple[int, int, int, int]:
    """Items and hits, with their distinct counts; zeros before the schema exists
    (a poll killed before it first opened the store)."""
    if not db.exists():
        return 0, 0, 0, 0
    with sqlite3.connect(db) as conn:
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'items'"
                        ).fetchone() == (0,):
            return 0, 0, 0, 0
        items, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT feed_id || ' ' || guid) FROM items").fetchone()
        hits, distinct_hits = conn.execute(
            "SELECT count(*), count(DISTINCT item_id || ' ' || rule_id) FROM hits").fetchone()
    return items, distinct, hits, distinct_hits


@pytest.fixture
def slow_feeds(feed_server: FeedServer) -> FeedServer:
    # Each answer takes 0.1 s, so a poll of 24 feeds four at a time lasts ~0.6 s
    # and a kill lands in the middle of it.
    for i in range(FEEDS):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, ENTRIES), delay=0.1)
    return feed_server


@pytest.mark.parametrize("answered", [1, 6, 12, 20])
def test_poll_killed_then_rerun_loses_and_duplicates_nothing(
        slow_feeds: FeedServer, tmp_path: Path, answered: int) -> None:
    config = config_for(slow_feeds, tmp_path)
    db = tmp_path / "monitor.db"
    proc = poll(config)
    # Kill it in the middle: once the server has answered this many feeds.
    def answered_enough() -> bool:
        assert proc.poll() is None, "the poll ended before the kill"
        return sum(slow_feeds.count(f"/f{i}.xml") for i in range(FEEDS)) >= answered

    wait_until(answered_enough, f"{answered} feeds answered", timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = counts(db)[0]
    assert partial < FEEDS * ENTRIES  # it really was cut short
    rerun = poll(config)
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    items, distinct, hits, distinct_hits = counts(db)
    assert items == distinct == FEEDS * ENTRIES
    assert hits == distinct_hits == FEEDS * 2  # entries 3 and 13 of each feed are CPC stories
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_locked_store_fails_the_poll_cleanly_and_the_next_succeeds(
        feed_server: FeedServer, tmp_path: Path) -> None:
    for i in range(FEEDS):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, ENTRIES))
    config = config_for(feed_server, tmp_path, 'timeout = "1s"')
    first = poll(config)
    first.communicate(timeout=120)
    db = tmp_path / "monitor.db"
    for i in range(FEEDS):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, ENTRIES + 1))
    # Another process holds the write lock for the whole poll.
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = poll(config)
        out, err = locked.communicate(timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.returncode == 1
    assert "database is locked" in err and "Traceback" not in err
    after = poll(config)
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err
    assert f"{FEEDS} new items" in out
    assert counts(db)[:2] == (FEEDS * (ENTRIES + 1),) * 2


def _limit_file_size(limit: int) -> None:
    # What a full disk looks like to SQLite: writes fail (EFBIG) instead of the
    # process being killed by SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_is_an_error_without_corruption(feed_server: FeedServer,
                                                    tmp_path: Path) -> None:
    for i in range(FEEDS):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, ENTRIES))
    config = config_for(feed_server, tmp_path)
    first = poll(config, preexec_fn=lambda: _limit_file_size(300_000))
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 1
    assert ("disk is full" in err or "disk I/O error" in err) and "Traceback" not in err
    db = tmp_path / "monitor.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # With room again, the next poll stores everything, once.
    again = poll(config)
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    items, distinct, _, _ = counts(db)
    assert items == distinct == FEEDS * ENTRIES


def test_digest_killed_mid_send_goes_out_once_more_and_loses_nothing(tmp_path: Path) -> None:
    """The crash between "sent" and "marked": the message is resent once (same
    delivery id, so a receiver can drop it), and no hit is lost or sent in two."""
    import json
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import sqlalchemy as sa

    posts: list[tuple[str, list[int]]] = []
    answer = threading.Event()  # until set, the receiver reads a post and does not answer
    got_post = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hits = [h["id"] for s in body["sections"] for st in s["stories"]
                    for h in st["hits"]]
            posts.append((self.headers["X-News-Monitor-Delivery"], hits))
            got_post.set()
            answer.wait(120)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    examples = Path(__file__).resolve().parents[1] / "examples" / "feeds"
    shutil.copytree(examples, tmp_path / "feeds")
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        '[[desks]]\nname = "desk"\nrules = ["*"]\n'
        f'webhook_url = "http://127.0.0.1:{server.server_address[1]}/hook"\n'
        + "".join(f'[[feeds]]\nurl = "feeds/{p.name}"\n' for p in sorted(examples.iterdir())))
    env = cli_env()

    def cli(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config),
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)

    try:
        assert cli("poll").wait(timeout=60) == 0
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
        with engine.connect() as conn:
            all_hits = set(conn.execute(sa.text("SELECT id FROM hits")).scalars())
        assert len(all_hits) >= 5
        sender = cli("digest")
        assert got_post.wait(30)
        sender.send_signal(signal.SIGKILL)  # sent, not yet marked
        sender.wait(timeout=10)
        answer.set()
        # Five minutes later the crashed sender's lease has expired.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE deliveries SET lease_until = NULL"))
        again = cli("digest")
        _out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        engine.dispose()
    finally:
        server.shutdown()
    first_id, first_hits = posts[0]
    assert set(first_hits) == all_hits
    assert [p for p in posts if p[0] != first_id] == []  # no hit in a second delivery
    assert len(posts) == 2 and posts[1] == posts[0]  # the one resend, identical
