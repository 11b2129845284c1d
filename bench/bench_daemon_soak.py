"""Daemon memory over an hour of steady load, alerts flowing: it must stay flat.

Run from the repository root::

    .venv/bin/python bench/bench_daemon_soak.py                  # 60 minutes
    .venv/bin/python bench/bench_daemon_soak.py --minutes 15
    .venv/bin/python bench/bench_daemon_soak.py --smoke          # ~40 s, for CI

Starts the real daemon (``news-monitor run``, a subprocess) on a fresh SQLite
store, polling ``--feeds`` loopback feeds (:class:`common.FeedServer`) every
second. Every second ``--advance`` feeds publish one new item (round robin),
so the store keeps growing as in production; about 6 % of the items carry a
story a shipped rule catches. One desk takes every rule with
``alert_min_severity = "low"``: each hit is alerted at once to a loopback
webhook that answers 200, and a digest goes out every 5 minutes.

The daemon's RSS and PSS (``/proc/PID/status``, ``/proc/PID/smaps_rollup``)
are sampled every 10 s; a line is printed every 5 minutes. At the end:
RSS at 5 and 30 minutes and at the end, the growth over the last half of the
run, the worst slope over any 5-minute window after the first 5 minutes (a
least-squares fit of the samples in the window), and the items, hits and
webhook deliveries done, so that the load is shown to be real.

``--receiver-delay S`` makes the webhook answer each post S seconds late (it
still takes every post): the senders' threads and queues then stay busy, the
case of a slow receiver in the field. The issue's
bar: growth over the last half hour of the hour-long run <= 2 MiB, and
<= 0.15 MiB/min over any 5 minutes after the first 5.

Extra environment for the daemon (e.g. ``MALLOC_ARENA_MAX=2``) is given with
``--env NAME=VALUE``, to test a hypothesis without editing the code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sqlite3
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import common


class _Receiver(BaseHTTPRequestHandler):
    """The webhook stand-in: reads the POST, answers 200, counts events."""

    protocol_version = "HTTP/1.1"
    server: _ReceiverServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.delay:
            time.sleep(self.server.delay)
        event = self.headers.get("X-News-Monitor-Event", "?")
        with self.server.lock:
            self.server.counts[event] = self.server.counts.get(event, 0) + 1
            with contextlib.suppress(ValueError):
                doc = json.loads(body)
                self.server.hits += len(doc.get("hits") or ())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.delay = delay
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.hits = 0


def _smaps_pss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stored(work: Path) -> int:
    with contextlib.suppress(sqlite3.Error), sqlite3.connect(work / "monitor.db") as db:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    return 0


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, MiB) points, MiB/min."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--feeds", type=int, default=30)
    ap.add_argument("--advance", type=int, default=3, help="feeds with a new item each second")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--report", type=float, default=5.0, help="minutes between lines")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the daemon (repeatable)")
    ap.add_argument("--receiver-delay", type=float, default=0.0, metavar="S",
                    help="the webhook answers each post S seconds late")
    ap.add_argument("--smoke", action="store_true", help="40 s, small sizes, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    # Stopped with SIGTERM, it still stops its daemon and feed server (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.smoke:
        a.minutes, a.feeds, a.advance, a.sample, a.report = 0.67, 10, 2, 2.0, 0.25
    common.compile_checkout()
    print(f"machine: {common.machine()}")
    receiver = _ReceiverServer(a.receiver_delay)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    samples: list[tuple[float, float, float]] = []  # (minute, RSS MiB, PSS MiB)
    env = common.nm_env()
    for pair in a.env:
        name, _, value = pair.partition("=")
        env[name] = value
    published = 0
    with common.FeedServer(a.feeds) as server, common.workdir("nm-bench-soak-") as work:
        desk = ('[[desks]]\nname = "soak"\nrules = ["*"]\nschedule = "*/5 * * * *"\n'
                f'webhook_url = "{hook}"\nalert_min_severity = "low"\n')
        daemon = common.start_daemon(work, server, tick="0.5", extra=desk, env=env)
        started = time.monotonic()
        end = started + a.minutes * 60
        next_sample = started + a.sample
        next_report = started + a.report * 60
        try:
            while (now := time.monotonic()) < end:
                time.sleep(max(0.0, min(1.0, end - now)))
                common.check_running(daemon, work)
                server.advance(a.advance)
                published += a.advance
                now = time.monotonic()
                if now >= next_sample:
                    next_sample += a.sample
                    rss, _ = common.rss_mib(daemon.pid)
                    samples.append(((now - started) / 60, rss, _smaps_pss_mib(daemon.pid)))
                if now >= next_report and samples:
                    next_report += a.report * 60
                    m, rss, pss = samples[-1]
                    with receiver.lock:
                        sent = dict(receiver.counts)
                    print(f"{m:6.1f} min  RSS {rss:7.1f} MiB  PSS {pss:7.1f} MiB  "
                          f"published {published:,}  webhook {sent}", flush=True)
                    common.save_json(a.json, {"samples": samples})  # a look while it runs
            # On a busy machine the last polls may lag: let them catch up (<= 60 s).
            wanted = a.feeds * common.ITEMS + published - 3 * a.advance
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _stored(work) < wanted:
                time.sleep(1)
        finally:
            peak = common.stop_daemon(daemon)
            receiver.shutdown()
        minutes = (time.monotonic() - started) / 60
        with sqlite3.connect(work / "monitor.db") as db:
            items = db.execute("SELECT count(*) FROM items").fetchone()[0]
            hits = db.execute("SELECT count(*) FROM hits").fetchone()[0]
            delivered = db.execute("SELECT count(*) FROM delivery_hits").fetchone()[0]
        with receiver.lock:
            sent = dict(receiver.counts)
        # Every published item is stored (the last few seconds' may not be polled yet).
        if not published - 3 * a.advance <= items - a.feeds * common.ITEMS <= published:
            raise AssertionError(f"stored {items} items, published "
                                 f"{a.feeds * common.ITEMS + published}")
        if hits and not sent:
            raise AssertionError(f"{hits} hits but the webhook got nothing")

    def rss_at(minute: float) -> float:
        return min(samples, key=lambda s: abs(s[0] - minute))[1]

    def median_rss(low: float, high: float) -> float:
        window = [s[1] for s in samples if low <= s[0] <= high]
        return statistics.median(window or [rss_at(high)])

    # Medians of one minute at each end, so that one GC'd sample does not decide.
    half = minutes / 2
    growth = median_rss(minutes - 1, minutes) - median_rss(half - 0.5, half + 0.5)
    worst, worst_at = 0.0, 0.0
    first = 5.0 if minutes > 10 else minutes / 4
    window = min(5.0, minutes - first)
    t = first
    while window > 0 and t + window <= minutes + 1e-9:
        pts = [(s[0], s[1]) for s in samples if t <= s[0] <= t + window]
        if len(pts) >= 3:
            s = _slope(pts)
            if s > worst:
                worst, worst_at = s, t
        t += a.sample / 60
    late = f", the webhook answering {a.receiver_delay:g} s late" if a.receiver_delay else ""
    print(f"\n{a.feeds} feeds polled every second, {a.advance} new items a second{late}, "
          f"{minutes:.1f} minutes\n")
    rows = [(f"RSS at {m} min", f"{rss_at(m):.1f}" if m <= minutes else "(shorter run)")
            for m in (5, 30)]
    rows += [("RSS at the end", f"{samples[-1][1]:.1f}"),
            ("PSS at the end", f"{samples[-1][2]:.1f}"),
            ("peak RSS (VmHWM)", f"{peak:.1f}"),
            (f"growth over the last half ({half:.0f} min), MiB", f"{growth:+.2f}"),
            (f"worst {window:.0f}-minute slope after {first:.0f} min, MiB/min "
             f"(from minute {worst_at:.1f})", f"{worst:+.3f}"),
            ("items stored", f"{items:,}"), ("hits", f"{hits:,}"),
            ("hit deliveries recorded", f"{delivered:,}"),
            ("webhook posts (alert / digest)",
             f"{sent.get('alert', 0):,} / {sent.get('digest', 0):,}")]
    print(common.table(("daemon soak", "value"), rows))
    common.save_json(a.json, {"machine": common.machine(), "feeds": a.feeds,
                              "advance": a.advance, "receiver_delay": a.receiver_delay,
                              "env": a.env, "samples": samples,
                              "growth": growth, "worst_slope": worst, "items": items,
                              "hits": hits, "webhook": sent})
    return 0


if __name__ == "__main__":
    sys.exit(main())
