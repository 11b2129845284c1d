"""Parse throughput, in one process: monitor.parse against feedparser itself.

Run from the repository root::

    .venv/bin/python bench/bench_parse.py              # 500 documents x 5 runs
    .venv/bin/python bench/bench_parse.py --smoke      # tiny sizes, for CI

The documents are the bench feeds (``common.feed_xml``: RSS 2.0, 20 items,
~15 KB each), and the same feeds with one ``media:`` element per item, which
takes them out of the plain subset that monitor.parse reads without
feedparser. Variants, each over all documents, interleaved per run:

* ``parse_feed``: what a poll does (plain documents skip feedparser);
* ``parse_feed, feedparser path``: the same documents forced through
  feedparser (sanitiser and URI resolution off), as any non-plain feed;
* ``feedparser.parse`` with its defaults (sanitiser on): what reader pays.

Figures: documents/s and entries/s (median, min-max over the runs), and the
speed-up of each variant over plain ``feedparser.parse``, paired per run.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable

import common
from common import Stat

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


def _not_plain(doc: bytes) -> bytes:
    """The same feed with a media: element per item (Media RSS), as many real feeds have."""
    doc = doc.replace(b'<rss version="2.0">',
                      b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">', 1)
    return doc.replace(b"</item>", b'  <media:thumbnail url="https://img.example.org/t.jpg"/>'
                                   b"\n</item>")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run, for CI")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.smoke:
        a.feeds, a.runs = 10, 1

    import feedparser

    from monitor import parse
    from monitor.parse.plain_rss import read_plain_rss20

    plain = [common.feed_xml(i) for i in range(a.feeds)]
    media = [_not_plain(d) for d in plain]
    assert read_plain_rss20(plain[0], HEADERS) is not None
    assert read_plain_rss20(media[0], HEADERS) is None
    entries = a.feeds * common.ITEMS

    def ours(docs: list[bytes]) -> Callable[[], int]:
        return lambda: sum(len(parse.parse_feed(d, url=f"https://news.example.org/{i}/rss",
                                                headers=HEADERS).items)
                           for i, d in enumerate(docs))

    def ours_slow(docs: list[bytes]) -> Callable[[], int]:
        return lambda: sum(len(parse._parse_xml(d, f"https://news.example.org/{i}/rss",
                                                dict(HEADERS), fast=False).items)
                           for i, d in enumerate(docs))

    def upstream(docs: list[bytes]) -> Callable[[], int]:
        return lambda: sum(len(feedparser.parse(io.BytesIO(d), response_headers=HEADERS).entries)
                           for d in docs)

    variants = {
        "parse_feed, plain RSS 2.0 (fast path)": ours(plain),
        "parse_feed, plain RSS 2.0 forced through feedparser": ours_slow(plain),
        "parse_feed, RSS 2.0 + media: (feedparser path)": ours(media),
        "feedparser.parse, defaults (sanitiser on)": upstream(plain),
    }
    for run in variants.values():  # warm-up: imports, regex caches
        run()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(a.runs):
        for name, run in variants.items():
            started = time.perf_counter()
            got = run()
            seconds[name].append(time.perf_counter() - started)
            if got != entries:
                raise AssertionError(f"{name}: {got} entries, expected {entries}")

    print(f"machine: {common.machine()}")
    print(f"{a.feeds} documents ({sum(map(len, plain)) / 2**20:.1f} MiB), {entries:,} entries, "
          f"{a.runs} runs\n")
    base = seconds["feedparser.parse, defaults (sanitiser on)"]
    rows = []
    for name, values in seconds.items():
        docs = Stat.of([a.feeds / v for v in values])
        speedup = Stat.of([b / v for b, v in zip(base, values, strict=True)])
        rows.append((name, f"{docs.median:,.0f} ({docs.low:,.0f}–{docs.high:,.0f})",
                     f"{entries / Stat.of(values).median:,.0f}", f"{speedup.fmt()} ×"))
    print(common.table(("variant", "documents/s", "entries/s", "vs feedparser.parse"), rows))
    common.save_json(a.json, {"machine": common.machine(), "feeds": a.feeds, "runs": a.runs,
                              "seconds": seconds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
