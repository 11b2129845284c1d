"""The web view at a million items: p95 of every page and API call.

Run from the repository root::

    .venv/bin/python bench/bench_web.py                      # SQLite, then PostgreSQL
    .venv/bin/python bench/bench_web.py --pg-url postgresql://user@127.0.0.1/db
    .venv/bin/python bench/bench_web.py --smoke              # tiny sizes, for CI

Fills a fresh store as ``bench_store.py`` does (``--items``, 1,000,000 entries
of 1,000 feeds over 180 days, 6 % with a hit: ~60,000 hits), starts
``news-monitor serve`` on a loopback port (a process of its own, as it runs),
and times each request from this process over one kept-alive HTTP connection:
``--runs`` times each (after one warm-up), the whole answer read. The search
words are the fill's own: ``pipeline`` is in ~40 % of titles (the worst case:
many candidates), a serial number in one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import common
from bench_store import FEEDS, _postgres, fill


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, url: str) -> Path:
    rules = common.REPO / "rules"
    path.write_text(
        f'[storage]\nurl = "{url}"\n[rules]\ndir = "{rules}"\n'
        + "".join(f'[[feeds]]\nurl = "https://news.example.org/{f}/rss"\n' for f in range(FEEDS))
        + '[[desks]]\nname = "energy"\nrules = ["cpc-disruption", "btc-diversion"]\n',
        encoding="utf-8")
    return path


@contextlib.contextmanager
def serving(config: Path) -> Iterator[int]:
    port = _free_port()
    log = config.with_suffix(".log")
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(common.nm_command(config, "serve", "--listen",
                                                  f"127.0.0.1:{port}"),
                                env=common.nm_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not start: " + log.read_text()[-3000:])
            time.sleep(0.05)
        yield port
    except Exception:
        print(log.read_text()[-5000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(10)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def requests(conn: http.client.HTTPConnection) -> list[tuple[str, str, str, bytes | None]]:
    """(name, method, path, body): every page and API call, with ids of this store."""
    conn.request("GET", "/api/hits?limit=1")
    newest = json.loads(conn.getresponse().read())[0]["id"]
    mid = newest // 2
    serial = newest * 8  # an item's serial number: in one title (FTS: one candidate)
    form = urlencode({"title": "Caspian Pipeline Consortium halts loadings after a storm",
                      "summary": "Tanker loading at the Novorossiysk terminal suspended."})
    return [
        ("/", "GET", "/", None),
        ("/ ?rule=", "GET", "/?rule=cpc-disruption", None),
        ("/ ?desk=", "GET", "/?desk=energy", None),
        ("/ ?since=1d", "GET", "/?since=1d", None),
        ("/ ?q=pipeline (common word)", "GET", "/?q=pipeline", None),
        ("/ ?q=SERIAL (rare word)", "GET", f"/?q={serial}", None),
        ("/ ?q=&rule=&since=7d", "GET", "/?q=pipeline&rule=cpc-disruption&since=7d", None),
        ("/ ?before= (a deep page)", "GET", f"/?before={mid}", None),
        ("/hits/ID", "GET", f"/hits/{mid}", None),
        ("/feeds (1,000 feeds)", "GET", "/feeds", None),
        ("/rules", "GET", "/rules", None),
        ("/rules/ID", "GET", "/rules/cpc-disruption", None),
        ("POST /rules/ID/test", "POST", "/rules/cpc-disruption/test", form.encode()),
        ("POST /rules/ID/backtest", "POST", "/rules/cpc-disruption/backtest", b""),
        ("/silences", "GET", "/silences", None),
        ("/silences/preview", "GET", "/silences/preview?rule=cpc-disruption&for=7d", None),
        ("/deliveries", "GET", "/deliveries", None),
        ("GET /api/hits?limit=50", "GET", "/api/hits?limit=50", None),
        ("GET /api/hits?q=pipeline", "GET", "/api/hits?q=pipeline&limit=50", None),
        ("GET /api/hits?rule=&since=7d", "GET", "/api/hits?rule=cpc-disruption&since=7d", None),
        ("POST /api/hits/ID/feedback", "POST", f"/api/hits/{mid}/feedback",
         json.dumps({"verdict": "noise"}).encode()),
    ]


def measure(port: int, runs: int) -> list[tuple[str, float, float, int]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    for name, method, path, body in requests(conn):
        headers = {}
        if method == "POST":
            headers["Content-Type"] = ("application/json" if path.startswith("/api")
                                       else "application/x-www-form-urlencoded")
        times: list[float] = []
        size = 0
        for n in range(runs + 1):
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            took = time.perf_counter() - started
            if r.status != 200:
                raise AssertionError(f"{method} {path}: {r.status} {data[:300]!r}")
            if n:  # the first is the warm-up
                times.append(took * 1000)
            size = len(data)
        out.append((name, p95(times), sorted(times)[len(times) // 2], size))
    conn.close()
    return out


def bench_backend(name: str, url: str, items: int, runs: int, work: Path) -> list[tuple]:
    print(f"\n{name}: filling {items:,} items ...", flush=True)
    filled = fill(url, items)
    print(f"  {filled['items']:,} items, {filled['hits']:,} hits", flush=True)
    config = write_config(work / f"{name}.toml", url)
    with serving(config) as port:
        got = measure(port, runs)
    rows = [(name, f"{filled['items']:,} items, {filled['hits']:,} hits", req,
             f"**{p:.1f}**", f"{m:.1f}", f"{size / 1024:.0f}") for req, p, m, size in got]
    print(common.table(HEADER, rows), flush=True)  # each backend's as soon as it is done
    return rows


HEADER = ("web store", "size", "request", "p95 ms", "median ms", "KiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--pg-url", metavar="URL", help="a PostgreSQL database it may fill")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, SQLite only, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.smoke:
        a.items, a.runs, a.no_pg = 2000, 2, True
    common.compile_checkout()
    print(f"machine: {common.machine()}")
    rows: list[tuple] = []
    with common.workdir("nm-bench-web-") as work:
        rows += bench_backend("SQLite", f"sqlite:///{work}/store.db", a.items, a.runs, work)
        if not a.no_pg:
            with _postgres(a.pg_url) as pg:
                if pg is None:
                    print("\nPostgreSQL: skipped (no --pg-url, and no postgresql package "
                          "to start a throwaway server)")
                else:
                    rows += bench_backend("PostgreSQL", pg, a.items, a.runs, work)
    print(f"\n{a.runs} runs per request, one kept-alive connection\n")
    print(common.table(HEADER, rows))
    common.save_json(a.json, {"machine": common.machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
