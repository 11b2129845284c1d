"""The daemon's steady-state cost: CPU seconds per 1,000 feeds polled, most answering 304.

Run from the repository root::

    .venv/bin/python bench/bench_daemon_cpu.py                 # 500 feeds, 30 cycles
    .venv/bin/python bench/bench_daemon_cpu.py --smoke         # tiny sizes, for CI

Starts the real daemon (``news-monitor run --tick 0.25``) polling ``--feeds``
loopback feeds every second, the shipped rules, a fresh SQLite store, no
desk. Its first cycles are cold (every feed new) and not counted; after each
cycle the server publishes one new entry in ``--advance`` feeds (5 % by
default), so a steady cycle fetches 95 % answers of 304 and matches and
stores the rest, as a service does between bursts of news. The daemon's CPU
(user + system, ``/proc/PID/stat``, its threads included) is read at each
cycle's end; the figure is the CPU of the counted cycles over the feeds they
polled, with the median and range of the per-cycle figure.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import common
from common import Stat

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--cycles", type=int, default=30, help="cycles counted")
    ap.add_argument("--warmup", type=int, default=3, help="cycles not counted (the cold one)")
    ap.add_argument("--advance", type=int, default=25, help="feeds with a new entry per cycle")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.smoke:
        a.feeds, a.cycles, a.warmup, a.advance = 20, 2, 1, 1
    common.compile_checkout()
    print(f"machine: {common.machine()}")
    marks: list[tuple[int, float, float]] = []  # (cycle, CPU s, monotonic s)
    with common.FeedServer(a.feeds) as server, common.workdir("nm-bench-cpu-") as work:
        daemon = common.start_daemon(work, server, tick="0.25")
        started = time.monotonic()
        cycle = 0
        counts: list[tuple[int, int]] = []  # (200s, 304s) per counted cycle
        last = {"200": 0, "304": 0}
        try:
            while cycle < a.warmup + a.cycles:
                time.sleep(0.05)
                common.check_running(daemon, work)
                stats = server.stats()
                done = (stats["200"] + stats["304"]) // a.feeds
                if done > cycle:
                    cycle = done
                    marks.append((cycle, cpu_seconds(daemon.pid), time.monotonic()))
                    if cycle > a.warmup:
                        counts.append((stats["200"] - last["200"], stats["304"] - last["304"]))
                    last = {"200": stats["200"], "304": stats["304"]}
                    server.advance(a.advance)
                if time.monotonic() - started > 60 + 10 * (a.warmup + a.cycles):
                    raise RuntimeError(f"only {cycle} cycles in {time.monotonic() - started:.0f} s")
        finally:
            common.stop_daemon(daemon)
    counted = [m for m in marks if m[0] >= a.warmup]
    per_cycle = [(b[1] - x[1]) / (a.feeds * (b[0] - x[0]) / 1000)
                 for x, b in itertools.pairwise(counted)]
    total_cpu = counted[-1][1] - counted[0][1]
    feeds_polled = a.feeds * (counted[-1][0] - counted[0][0])
    ok = sum(c[0] for c in counts)
    not_modified = sum(c[1] for c in counts)
    wall = counted[-1][2] - counted[0][2]
    rows = [("cycles counted (after the cold ones)", f"{counted[-1][0] - counted[0][0]}"),
            ("feeds polled in them", f"{feeds_polled:,} ({not_modified:,} answered 304, "
                                     f"{ok:,} 200)"),
            ("daemon CPU in them, s", f"{total_cpu:.2f} in {wall:.0f} s of wall time"),
            ("**CPU seconds per 1,000 feeds polled**",
             f"**{1000 * total_cpu / feeds_polled:.3f}**"),
            ("... per cycle, median (min-max)", Stat.of(per_cycle).fmt(3) if per_cycle else "—")]
    print(f"\n{a.feeds} feeds, {a.advance} new entries a cycle\n")
    print(common.table(("daemon steady state", "value"), rows))
    common.save_json(a.json, {"machine": common.machine(), "feeds": a.feeds, "marks": marks,
                              "counts": counts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
