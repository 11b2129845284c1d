"""Poll time and memory, whole processes, side by side with lemon24/reader.

Run from the repository root::

    .venv/bin/python bench/bench_poll.py --reader-python /tmp/nm-bench/venv/bin/python
    .venv/bin/python bench/bench_poll.py --scaling              # 100 ... 10,000 feeds
    .venv/bin/python bench/bench_poll.py --smoke                # tiny sizes, for CI

One loopback feed server (``common.FeedServer``) serves every feed of every
pass. For each size and run, in alternating order (paired, so that the
machine's drift hits both tools alike):

* ``news-monitor --config C poll -q``, a whole process, on a fresh SQLite
  database: the *cold* poll (every feed answers 200: fetch, parse, match 20
  entries per feed against the shipped rules, store); then the same command
  again: the *all-304* poll (every feed answers 304 Not Modified);
* reader 3.27 in its own process (``reader_child.py``, run by
  ``--reader-python``): ``make_reader`` on a fresh database, ``add_feed`` for
  every feed and ``update_feeds(workers=16)``; then ``update_feeds`` again.

Each pass checks the server's counters (N answers of 200, then N of 304) and
the entries stored. Times are wall seconds of the whole process, start-up
included; memory is the peak RSS of the largest process (``ru_maxrss``) and
the peak summed PSS of the process tree (news-monitor parses in worker
processes). Ratios are reader / news-monitor, per run, then their median.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import common
from common import Stat


def _timed(server: common.FeedServer, tool: str, feeds: int, mode: str, cmd: list[str],
           env: dict[str, str] | None = None) -> common.Run:
    """One poll, timed whole; the server must have answered every feed: 200 on a
    cold poll, 304 on a warm one."""
    server.reset()
    run = common.run(cmd, env=env)
    expect = {"ok": feeds} if mode == "cold" else {"not_modified": feeds}
    server.expect(f"{tool} {mode} {feeds}", **expect)
    return run


def _forget(workdir: Path, pattern: str) -> None:
    """A cold poll starts from a new database."""
    for old in workdir.glob(pattern):
        old.unlink()


def nm_pass(server: common.FeedServer, workdir: Path, feeds: int, mode: str) -> common.Run:
    config = workdir / "monitor.toml"
    if mode == "cold":
        _forget(workdir, "nm.db*")
        common.write_config(config, [server.url(i) for i in range(feeds)],
                            db_url=f"sqlite:///{workdir}/nm.db")
    run = _timed(server, "news-monitor", feeds, mode,
                 common.nm_command(config, "poll", "-q"), env=common.nm_env())
    m = re.search(r"(\d+) ok, (\d+) failed; (\d+) new items", run.out)
    want = (feeds, 0, feeds * common.ITEMS if mode == "cold" else 0)
    if not m or tuple(map(int, m.groups())) != want:
        raise AssertionError(f"news-monitor {mode}: {run.out.strip()} {run.err[-2000:]}")
    return run


def reader_pass(python: str, server: common.FeedServer, workdir: Path, feeds: int,
                mode: str) -> common.Run:
    db = workdir / "reader.sqlite"
    if mode == "cold":
        _forget(workdir, "reader.sqlite*")
    run = _timed(server, "reader", feeds, mode,
                 [python, str(Path(__file__).with_name("reader_child.py")), mode, str(db),
                  server.base, str(feeds)])
    got = json.loads(run.out.strip().splitlines()[-1])
    if got["entries"] != feeds * common.ITEMS or got["feed_errors"]:
        raise AssertionError(f"reader {mode}: {got}")
    return run


def measure(server: common.FeedServer, sizes: list[int], runs: int, reader: str | None
            ) -> dict[tuple[str, int, str], list[common.Run]]:
    out: dict[tuple[str, int, str], list[common.Run]] = {}
    with common.workdir("nm-bench-poll-") as work:
        passes: dict[str, Callable[[int, str], common.Run]] = {
            "news-monitor": lambda feeds, mode: nm_pass(server, work / "nm", feeds, mode)}
        if reader is not None:
            passes["reader"] = lambda feeds, mode: reader_pass(reader, server, work / "reader",
                                                               feeds, mode)
        (work / "nm").mkdir()
        (work / "reader").mkdir()
        tools = list(passes)
        for feeds in sizes:
            for run in range(runs):
                for tool in tools if run % 2 == 0 else tools[::-1]:
                    for mode in ("cold", "warm"):
                        r = passes[tool](feeds, mode)
                        out.setdefault((tool, feeds, mode), []).append(r)
                        print(f"  {feeds:>6} feeds run {run + 1}/{runs} {tool:12} {mode}: "
                              f"{r.wall:6.2f} s, cpu {r.cpu:5.2f} s, peak {r.peak_mib:4.0f} "
                              f"MiB, tree {r.tree_mib:4.0f} MiB", flush=True)
    return out


def report(results: dict[tuple[str, int, str], list[common.Run]], sizes: list[int]) -> str:
    rows = []
    for feeds in sizes:
        for mode in ("cold", "warm"):
            nm = results[("news-monitor", feeds, mode)]
            rd = results.get(("reader", feeds, mode))
            what = "cold (all new)" if mode == "cold" else "all 304"
            ratio = (Stat.of([r.wall / n.wall for r, n in zip(rd, nm, strict=True)]).fmt()
                     + " ×") if rd else "—"
            rows.append((f"{feeds:,}", what, Stat.of([r.wall for r in nm]).fmt(),
                         Stat.of([r.wall for r in rd]).fmt() if rd else "—", ratio,
                         f"{Stat.of([r.peak_mib for r in nm]).median:.0f} / "
                         f"{Stat.of([r.tree_mib for r in nm]).median:.0f}",
                         f"{Stat.of([r.peak_mib for r in rd]).median:.0f}" if rd else "—"))
    return common.table(("feeds", "poll", "news-monitor, s", "reader 3.27, s",
                         "reader / news-monitor", "news-monitor MiB (peak RSS / tree PSS)",
                         "reader MiB (peak RSS)"), rows)


def scaling_table(results: dict[tuple[str, int, str], list[common.Run]], sizes: list[int]
                  ) -> str:
    rows = []
    for feeds in sizes:
        cold = results[("news-monitor", feeds, "cold")]
        warm = results[("news-monitor", feeds, "warm")]
        cold_s = Stat.of([r.wall for r in cold])
        warm_s = Stat.of([r.wall for r in warm])
        rows.append((f"{feeds:,}", cold_s.fmt(), f"{feeds / cold_s.median:,.0f}",
                     warm_s.fmt(), f"{feeds / warm_s.median:,.0f}",
                     f"{max(r.peak_mib for r in cold):.0f} / {max(r.tree_mib for r in cold):.0f}",
                     f"{max(r.peak_mib for r in warm):.0f} / {max(r.tree_mib for r in warm):.0f}"))
    return common.table(("feeds", "cold poll, s", "feeds/s", "all-304 poll, s", "feeds/s",
                         "cold MiB (peak RSS / tree PSS)", "304 MiB"), rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reader-python", metavar="PATH",
                    help="a Python with reader 3.27 installed (reader needs Python >= 3.12)")
    ap.add_argument("--scaling", action="store_true",
                    help="news-monitor alone at 100, 500, 2,000 and 10,000 feeds")
    ap.add_argument("--scaling-runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run, for CI")
    ap.add_argument("--json", metavar="PATH", help="also write every figure here")
    a = ap.parse_args()

    reader = a.reader_python
    if reader and not Path(reader).exists():
        ap.error(f"--reader-python {reader}: no such file")
    if a.smoke:
        a.feeds, a.runs, reader, a.scaling = [40], 1, None, False
    sizes = [100, 500, 2000, 10_000] if a.scaling else a.feeds
    runs = a.scaling_runs if a.scaling else a.runs
    if a.scaling:
        reader = None
    print(f"machine: {common.machine()}")
    if not reader:
        print("reader: skipped (no --reader-python given)")
    started = time.monotonic()
    common.compile_checkout()
    with common.FeedServer(max(sizes)) as server:
        results = measure(server, sizes, runs, reader)
    print(f"\n{runs} runs per figure, {time.monotonic() - started:.0f} s in all\n")
    text = scaling_table(results, sizes) if a.scaling else report(results, sizes)
    print(text)
    common.save_json(a.json, {
        "machine": common.machine(), "runs": runs,
        "results": {f"{tool} {feeds} {mode}": [
            {"wall": r.wall, "cpu": r.cpu, "peak_mib": r.peak_mib, "tree_mib": r.tree_mib}
            for r in rs] for (tool, feeds, mode), rs in results.items()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
