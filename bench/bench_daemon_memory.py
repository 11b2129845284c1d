"""Daemon memory over many poll cycles: it must stay flat.

Run from the repository root::

    .venv/bin/python bench/bench_daemon_memory.py                 # 500 feeds, 200 cycles
    .venv/bin/python bench/bench_daemon_memory.py --smoke         # tiny sizes, for CI

Starts the real daemon (``news-monitor run``) as a subprocess, polling
``--feeds`` loopback feeds every second (the shortest interval a config can
say; ``--tick`` 0.25 s), with the shipped rules and a fresh SQLite store, and
no desk (nothing is sent). Its first cycle is cold (every feed new); after
each cycle the server publishes one new entry in ``--advance`` feeds, so every
later cycle stores, matches and commits a few entries among 304s, as in
production. The daemon's resident memory (RSS, and the PSS of its process
tree) is sampled every 0.25 s; a cycle is counted each time the server has
answered as many requests as there are feeds.

Reported: RSS after the first cycle and at cycles 10, 50, 100, 150 and the
last, the peak, and the growth of the median RSS from cycles 20-40 to the
last 10 % of cycles (caches warm up: the matcher's word memo, SQLite's page
cache), and over the second half (the middle 10 % to the last 10 %), which
is "flat" under 1 MiB. At the end it checks that the store holds every entry
published, once.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time

import common


def _read_pages(base: str) -> None:
    """Every page of the web view once (a desk and an operator at work)."""
    import contextlib
    import urllib.request

    for path in ("/", "/?q=pipeline", "/feeds", "/rules", "/rules/cpc-disruption",
                 "/silences", "/deliveries", "/api/hits?limit=50", "/hits/1"):
        with contextlib.suppress(OSError), urllib.request.urlopen(base + path, timeout=10) as r:
            r.read()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--advance", type=int, default=25, help="feeds with a new entry per cycle")
    ap.add_argument("--web", action="store_true",
                    help="with the web view on ([web] listen), its pages read every cycle")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.smoke:
        a.feeds, a.cycles, a.advance = 20, 3, 2
    common.compile_checkout()
    print(f"machine: {common.machine()}")
    samples: list[tuple[int, float, float]] = []  # (cycle, rss MiB, tree PSS MiB)
    published = a.feeds * common.ITEMS
    with common.FeedServer(a.feeds) as server, common.workdir("nm-bench-daemon-") as work:
        web = None
        extra = ""
        if a.web:
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                web = f"http://127.0.0.1:{sock.getsockname()[1]}"
            extra = f'[web]\nlisten = "{web[7:]}"\n'
        daemon = common.start_daemon(work, server, tick="0.25", extra=extra)
        started = time.monotonic()
        cycle = 0
        try:
            while cycle < a.cycles:
                time.sleep(0.25)
                common.check_running(daemon, work)
                stats = server.stats()
                done = (stats["200"] + stats["304"]) // a.feeds
                if done > cycle:
                    cycle = done
                    server.advance(a.advance)
                    published += a.advance
                    if web is not None:
                        _read_pages(web)
                    rss, _ = common.rss_mib(daemon.pid)
                    samples.append((cycle, rss, common.tree_pss_mib(daemon.pid)))
                if time.monotonic() - started > 30 + 5 * a.cycles:
                    raise RuntimeError(f"only {cycle} cycles in {time.monotonic() - started:.0f} s")
        finally:
            peak = common.stop_daemon(daemon)
        seconds = time.monotonic() - started
        # The entries published in the last cycles may not be polled yet. (Each is
        # stored once by the schema's own unique key on feed and guid.)
        with sqlite3.connect(work / "monitor.db") as db:
            items = db.execute("SELECT count(*) FROM items").fetchone()[0]
        if not published - 3 * a.advance <= items <= published:
            raise AssertionError(f"stored {items} entries of {published}")

    def at(c: int) -> float:
        return min(samples, key=lambda s: abs(s[0] - c))[1]

    marks = sorted({1, 10, 50, 100, 150, a.cycles} & set(range(1, a.cycles + 1)))

    def rss_around(low: float, high: float) -> float:
        window = [rss for c, rss, _ in samples if low <= c <= high]
        return statistics.median(window or [samples[-1][1]])

    early = rss_around(20, 40)
    middle = rss_around(a.cycles * 0.45, a.cycles * 0.55)
    late = rss_around(a.cycles * 0.9, a.cycles)
    growth = late - middle
    print(f"\n{'web view on, every page read each cycle; ' if a.web else ''}"
          f"{a.feeds} feeds, {a.cycles} cycles in {seconds:.0f} s, {a.advance} new entries a "
          f"cycle; {items:,} entries stored\n")
    rows = [(f"RSS after cycle {c}", f"{at(c):.1f}") for c in marks]
    rows += [("peak RSS (VmHWM)", f"{peak:.1f}"),
             ("peak PSS of the process tree", f"{max(s[2] for s in samples):.1f}"),
             ("growth, cycles 20-40 to the last 10 % (caches warming up)",
              f"{late - early:+.1f}"),
             ("growth over the second half (the middle 10 % to the last 10 %)",
              f"{growth:+.1f}" + (" (flat)" if abs(growth) < 1 else " (NOT flat)"))]
    print(common.table(("daemon memory", "MiB"), rows))
    common.save_json(a.json, {"machine": common.machine(), "feeds": a.feeds,
                              "cycles": a.cycles, "samples": samples, "peak": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main())
