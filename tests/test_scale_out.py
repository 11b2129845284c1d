"""Three daemons on one PostgreSQL, 300 loopback feeds, one daemon killed half-way:
every entry stored once, every hit delivered to each desk once."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from waiting import wait_until

from monitor.rules import shipped_rules_dir

# Processes, or (in process) a cycle that outlasts its leases several times.
pytestmark = pytest.mark.slow

FEEDS = 300
INTERVAL = 3.0


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint: records (desk, delivery id, hit ids) of every POST."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, str, list[int]]] = []
        self.lock = threading.Lock()

    def url(self, desk: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{desk}"


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        hits = [h["id"] for s in body["sections"] for st in s["stories"] for h in st["hits"]]
        server: Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.posts.append((self.path.strip("/"),
                                 self.headers["X-News-Monitor-Delivery"], hits))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def start(config: Path, n: int) -> subprocess.Popen[bytes]:
    env = cli_env()
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run",
                             "--tick", "0.5"], stdout=subprocess.DEVNULL,
                            stderr=(config.parent / f"daemon{n}.log").open("w"), env=env)


def test_three_daemons_one_killed(feed_server: FeedServer, tmp_path: Path,
                                  postgres_url: str | None) -> None:
    if postgres_url is None:
        pytest.skip("no PostgreSQL: install Debian's postgresql or set NEWS_MONITOR_TEST_POSTGRES")
    from pg import fresh_database

    url = fresh_database(postgres_url, "nm_scale")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    for i in range(FEEDS):
        feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, 4))  # entry 3: a CPC story
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "{url}"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        f'[poll]\ninterval = "{int(INTERVAL)}s"\ntimeout = "2s"\n'
        # Immediate alerts carry every hit at once; the digests run every minute.
        f'[[desks]]\nname = "energy"\nrules = ["cpc-disruption"]\nschedule = "* * * * *"\n'
        f'alert_min_severity = "low"\nwebhook_url = "{receiver.url("energy")}"\n'
        f'[[desks]]\nname = "all"\nrules = ["*"]\nschedule = "* * * * *"\n'
        f'alert_min_severity = "low"\nwebhook_url = "{receiver.url("all")}"\n'
        + "".join(f'[[feeds]]\nurl = "{feed_server.url(f"/f{i}.xml")}"\n'
                  for i in range(FEEDS)))
    engine = sa.create_engine(url)

    def stored() -> tuple[int, int, int]:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("hits"):
                return (0, 0, 0)  # the first daemon is still migrating
            return (conn.execute(sa.text("SELECT count(*) FROM items")).scalar_one(),
                    conn.execute(sa.text(
                        "SELECT count(DISTINCT (feed_id, guid)) FROM items")).scalar_one(),
                    conn.execute(sa.text("SELECT count(*) FROM hits")).scalar_one())

    def scalar(sql: str, **params: object) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())

    def delivered(desk: str) -> set[int]:
        with receiver.lock:
            return {h for d, _, hs in receiver.posts if d == desk for h in hs}

    def settled() -> bool:
        """Each desk has every hit, and the store has no delivery left to send."""
        return (len(delivered("energy")) == FEEDS * 2 and len(delivered("all")) == FEEDS * 2
                and scalar("SELECT count(*) FROM deliveries WHERE state = 'pending'") == 0)

    def wait(what: str, check: object, timeout: float = 90) -> None:
        def logs() -> str:
            return f"{stored()}\n" + "\n".join(
                (tmp_path / f"daemon{n}.log").read_text()[-2000:] for n in range(3))
        wait_until(check, what, timeout, detail=logs)  # type: ignore[arg-type]

    daemons = [start(config, n) for n in range(3)]
    try:
        wait("round 1", lambda: stored()[0] == FEEDS * 4)
        started = time.monotonic()
        # Round 2: a new story in every feed, and one daemon dies while they come in:
        # once the round has begun and it holds feed leases.
        for i in range(FEEDS):
            feed_server.routes[f"/f{i}.xml"] = Feed(feed_doc(i, 14))  # entry 13: CPC again
        first = f"{socket.gethostname()}:{daemons[0].pid}"  # its owner name (monitor.daemon)
        wait("daemon 0 in the middle of round 2", lambda: stored()[0] > FEEDS * 4 and scalar(
            "SELECT count(*) FROM feeds WHERE lease_owner = :o", o=first) > 0)
        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(timeout=10)
        wait("round 2", lambda: stored()[0] == FEEDS * 14, timeout=120)
        wait("the deliveries", settled, timeout=120)
        # Room for any duplicate to show up: the two left poll every feed once more
        # (which would store a duplicate entry or hit, and queue its delivery),
        # and every delivery is sent.
        seen = [feed_server.count(f"/f{i}.xml") for i in range(FEEDS)]
        wait("one more round", lambda: all(feed_server.count(f"/f{i}.xml") > seen[i]
                                           for i in range(FEEDS)), timeout=60)
        wait("the deliveries of that round", settled, timeout=60)
        elapsed = time.monotonic() - started
        for d in daemons[1:]:
            d.send_signal(signal.SIGTERM)
        for d in daemons[1:]:
            assert d.wait(timeout=15) == 0
    finally:
        for d in daemons:
            if d.poll() is None:
                d.kill()
        receiver.shutdown()

    items, distinct, hits = stored()
    assert items == distinct == FEEDS * 14
    assert hits == FEEDS * 2
    # Each feed was polled about once per interval, not once per daemon.
    polls = [feed_server.count(f"/f{i}.xml") for i in range(FEEDS)]
    assert max(polls) <= (elapsed + 60) / INTERVAL
    # Each desk got each of its hits in exactly one delivery (a resend of the same
    # delivery id after the kill is the documented at-most-one duplicate).
    with engine.connect() as conn:
        all_hits = set(conn.execute(sa.text("SELECT id FROM hits")).scalars())
    for desk in ("energy", "all"):
        deliveries = {(d, h) for dd, d, hs in receiver.posts if dd == desk for h in hs}
        per_hit = Counter(h for _, h in deliveries)
        assert set(per_hit) == all_hits
        assert max(per_hit.values()) == 1
    engine.dispose()


def test_a_long_cycle_keeps_its_queued_feeds(store_url: str, tmp_path: Path,
                                             feed_server: FeedServer) -> None:
    """Feeds waiting behind the concurrency bound for longer than a lease stay
    leased to the cycle that claimed them: another instance never takes them."""
    from monitor.config import load_settings
    from monitor.pipeline import Poller
    from monitor.rules import load_rules
    from monitor.store import Store

    for i in range(4):
        feed_server.routes[f"/slow{i}.xml"] = Feed(feed_doc(i, 2), delay=0.5)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{store_url}"\n[poll]\nconcurrency = 1\n'
                      + "".join(f'[[feeds]]\nurl = "{feed_server.url(f"/slow{i}.xml")}"\n'
                                for i in range(4)), encoding="utf-8")
    settings = load_settings(config)
    mine, theirs = Store.open(store_url), Store.open(store_url)
    poller = Poller(settings, mine, lambda: load_rules(settings.rules_dir), owner="first")
    poller.lease = 0.6  # the cycle (4 x 0.5 s, one at a time) outlasts it three times
    urls = [f.url for f in settings.feeds]
    stolen: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        cycle = pool.submit(poller.poll, due_only=True)
        deadline = time.monotonic() + 60
        while not wait_futures([cycle], timeout=0.05).done:  # claiming all along
            assert time.monotonic() < deadline, "the cycle never ended"
            stolen += theirs.claim_due_feeds("second", urls, lease=60)
        report = cycle.result()  # what poll() raised, if it did
    assert stolen == []
    assert len(report.outcomes) == 4
    assert all(s.next_poll is not None for s in mine.feed_states(urls).values())
    assert mine.renew_feed_leases("first", lease=60) == 0  # every lease released
    mine.close()
    theirs.close()


_BIG_PIPES = """
import asyncio, sys, threading
from monitor.models import FetchRequest
from monitor.fetch_child import ForkedFetcher
from monitor.settings import PollConfig

fetcher = ForkedFetcher.start(lambda: b"r" * 300_000)  # bigger than any pipe buffer
assert fetcher is not None, "no fork"
# 5,000 requests (~300 KB pickled): one feed file, the rest refused at once
requests = [FetchRequest(sys.argv[1])] + [
    FetchRequest(f"http://127.0.0.1:1/feed-{i:05d}-{'x' * 20}.xml") for i in range(4999)]
sender = threading.Thread(
    target=lambda: fetcher.send(requests, PollConfig(concurrency=64, timeout=5)),
    daemon=True)
sender.start()
sender.join(timeout=20)
assert not sender.is_alive(), "sending the requests blocked"
assert fetcher.prepared() == b"r" * 300_000

async def collect():
    return [got async for got in fetcher.results()]

results = asyncio.run(collect())
fetcher.close()
print(len(results), [(r.url, len(p.items)) for r, p in results if r.ok])
"""


def test_the_fetch_child_takes_requests_before_its_prepared_answer_is_read(
        tmp_path: Path) -> None:
    """``poll`` sends the requests before reading what the child prepared; both
    outgrow a pipe's buffer (64 KiB) on a big instance, and neither side blocks.
    (A fresh interpreter: the fork is refused in a process with threads.)"""
    feed = tmp_path / "one.xml"
    feed.write_bytes(feed_doc(1, 3))
    r = subprocess.run([sys.executable, "-c", _BIG_PIPES, str(feed)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"5000 [({str(feed)!r}, 3)]"


_REFUSED = """
import os
from monitor.models import FetchRequest
from monitor.fetch_child import ForkedFetcher
from monitor.settings import PollConfig

fetcher = ForkedFetcher.start(lambda: ["rules are broken"], fetch_if=lambda r: not r)
os.waitid(os.P_PID, fetcher.pid, os.WEXITED | os.WNOWAIT)  # it has ended (close() reaps it)
requests = [FetchRequest(f"http://127.0.0.1:1/{i:06d}") for i in range(20000)]  # > a pipe
fetcher.send(requests, PollConfig())
print(fetcher.prepared())
fetcher.close()
"""


def test_a_fetch_child_refused_by_fetch_if_ends_without_fetching() -> None:
    r = subprocess.run([sys.executable, "-c", _REFUSED], capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "['rules are broken']", "")
