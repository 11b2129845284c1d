"""full_text: what reading the article page buys, and what it costs.

    .venv/bin/python bench/bench_full_text.py [--smoke] [--json OUT] [SET.jsonl ...]

(a) Quality. The labelled held-out articles (default: the measuring sets,
``bench/data/articles-{en,rukk}-b.jsonl``: id, title, lede, body, labels) are
served on loopback as a headline-only RSS feed (no description, as many
outlets' feeds are) whose links lead to each article's page wrapped in heavy
site chrome (``tests/newssite.py``: a BTC crypto ticker, a "most read" list
with a CPC headline of another day and the CPC of China, a cookie banner, a
newsletter box, a footer naming the CPC). The feed is polled with
``full_text`` off, on, and ``"topic"`` (only the pages of items whose
headline names a rule's topic without a hit), each ``news-monitor poll``
into a fresh SQLite store; the shipped rules' macro-F1 over their ids is
reported each way.

(b) Cost. 1,000 new items whose pages are those articles (cycled) in the same
chrome, in 10 feeds, polled by ``news-monitor poll`` each way (``--runs``
times, the ways alternating): article pages per second (pages / the extra
wall time over full_text off, medians) and the poll's peak resident memory
(its process tree).

``--smoke``: 12 articles and 40 items, for the test suite. A missing set: exit 2.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from pathlib import Path

import common

DATA = Path(__file__).parent / "data"
DEFAULTS = [DATA / "articles-en-b.jsonl", DATA / "articles-rukk-b.jsonl"]
sys.path.insert(0, str(common.REPO / "tests"))

from feedserver import Feed, FeedServer, Status  # noqa: E402
from newssite import chrome_page, headline_feed  # noqa: E402

HTML = "text/html; charset=utf-8"


def _paragraphs(row: dict[str, object]) -> list[str]:
    return [p.strip() for p in str(row["body"]).split("\n\n") if p.strip()]


def _serve_articles(server: FeedServer, rows: list[dict[str, object]], feeds: int,
                    prefix: str, *, numbered: bool = False) -> list[str]:
    """A page per row and ``feeds`` headline-only feeds listing them; the feeds'
    URLs. ``numbered``: each row's id and title get its position (rows repeat)."""
    entries: list[list[tuple[str, str, str]]] = [[] for _ in range(feeds)]
    for n, row in enumerate(rows):
        rid, title = str(row["id"]), str(row["title"])
        if numbered:  # another title: a repeat is not taken for a republished entry
            rid, title = f"{rid}~{n}", f"{title} ({n})"
        path = f"/{prefix}/a/{rid}"
        server.routes[path] = Feed(chrome_page(title, _paragraphs(row),
                                               lang=str(row.get("lang") or "en")).encode(),
                                   content_type=HTML)
        entries[n % feeds].append((rid, title, server.url(path)))
    urls = []
    for i, chunk in enumerate(entries):
        path = f"/{prefix}/feed-{i}.xml"
        server.routes[path] = Feed(headline_feed(chunk, title=f"Outlet {i}"))
        urls.append(server.url(path))
    return urls


WAYS = {"off": "false", "on": "true", "topic": '"topic"'}


def _config(work: Path, name: str, urls: list[str], way: str) -> tuple[Path, Path]:
    db = work / f"{name}.db"
    # per_host as shipped (4): every page here is on one host, 127.0.0.1
    config = common.write_config(work / f"{name}.toml", urls, db_url=f"sqlite:///{db}",
                                 per_host=4)
    config.write_text(config.read_text().replace(
        "[poll]\n", f"[poll]\nfull_text = {WAYS[way]}\n"))
    return config, db


def _hits(db: Path) -> dict[str, set[str]]:
    with sqlite3.connect(db) as conn:
        out: dict[str, set[str]] = {}
        for guid, rule in conn.execute(
                "SELECT i.guid, h.rule_id FROM hits h JOIN items i ON i.id = h.item_id"):
            out.setdefault(guid, set()).add(rule)
        return out


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def macro_f1(rows: list[dict[str, object]], hits: dict[str, set[str]], ids: list[str]
             ) -> tuple[float, int, int]:
    tp = dict.fromkeys(ids, 0)
    fp, fn = dict(tp), dict(tp)
    for r in rows:
        got = hits.get(str(r["id"]), set())
        for i in ids:
            hit, want = i in got, i in r["labels"]  # type: ignore[operator]
            tp[i] += hit and want
            fp[i] += hit and not want
            fn[i] += want and not hit
    f1 = [2 * tp[i] / d if (d := 2 * tp[i] + fp[i] + fn[i]) else 1.0 for i in ids]
    return sum(f1) / len(f1), sum(fp.values()), sum(fn.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="*", default=[str(p) for p in DEFAULTS])
    ap.add_argument("--smoke", action="store_true", help="a few articles and items")
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    ap.add_argument("--runs", type=int, default=3, help="cost: polls each way (median)")
    args = ap.parse_args()
    missing = [p for p in args.corpus if not Path(p).is_file()]
    if missing:
        print(f"no such file: {', '.join(missing)} (labelled articles: id, title, lede, "
              "body, labels per line)", file=sys.stderr)
        return 2
    rows = [json.loads(line) for p in args.corpus
            for line in Path(p).read_text(encoding="utf-8").splitlines() if line.strip()]
    items = 1000
    if args.smoke:
        rows, items, args.runs = rows[:12], 36, 1
    from monitor.rules import load_rules, shipped_rules_dir

    ids = [r.id for r in load_rules(shipped_rules_dir()).rules]
    common.compile_checkout()
    env = common.nm_env()
    out: dict[str, object] = {"machine": common.machine(), "articles": len(rows),
                              "sets": [Path(p).name for p in args.corpus]}
    with common.workdir("nm-fulltext-") as work, FeedServer() as server:
        server.routes["/robots.txt"] = Status(404)
        # (a) quality
        urls = _serve_articles(server, rows, 1, "q")
        quality: dict[str, object] = {}
        for way in WAYS:
            config, db = _config(work, f"q-{way}", urls, way)
            common.run(common.nm_command(config, "poll"), env=env)
            f1, fp, fn = macro_f1(rows, _hits(db), ids)
            quality[way] = {
                "macro_f1": round(f1, 3), "false_positives": fp, "misses": fn,
                "with_content": _count(db, "SELECT count(*) FROM items WHERE content <> ''")}
        out["quality"] = quality
        # (b) cost
        copies = -(-items // len(rows))
        urls = _serve_articles(server, (rows * copies)[:items], 10, "c", numbered=True)
        server.clear()
        cost: dict[str, object] = {}
        runs: dict[str, list[common.Run]] = {way: [] for way in WAYS}
        for n in range(args.runs):  # the ways alternate: the machine's drift hits each
            for way in WAYS:
                config, db = _config(work, f"c-{way}-{n}", urls, way)
                server.clear()
                runs[way].append(common.run(common.nm_command(config, "poll"), env=env))
                cost[way] = {
                    "items": _count(db, "SELECT count(*) FROM items"),
                    "requests": server.count(),
                    "pages": sum(e.path.startswith("/c/a/") for e in server.requests())}
        for way, done in runs.items():
            cost[way] = {  # type: ignore[dict-item]
                **cost[way],  # type: ignore[dict-item]
                "wall_s": round(statistics.median(r.wall for r in done), 2),
                "cpu_s": round(statistics.median(r.cpu for r in done), 2),
                "peak_rss_mib": round(max(max(r.peak_mib, r.tree_mib) for r in done), 1),
                "runs": len(done)}
        on, off = cost["on"], cost["off"]
        pages = on["pages"]  # type: ignore[index]
        extra = on["wall_s"] - off["wall_s"]  # type: ignore[index,operator]
        cost["pages"] = pages
        cost["pages_per_s"] = round(pages / extra, 1) if extra > 0 else None
        out["cost"] = cost
    q, c = out["quality"], out["cost"]
    sets = ", ".join(out["sets"])  # type: ignore[arg-type]
    print(f"{out['articles']} labelled articles ({sets}): a headline-only feed whose links "
          "lead to pages in heavy site chrome\n")
    print(common.table(
        ["full_text", "macro-F1", "false positives", "misses", "items with content"],
        [(way, f"{q[way]['macro_f1']:.3f}", q[way]["false_positives"],  # type: ignore[index]
          q[way]["misses"], q[way]["with_content"]) for way in WAYS]))  # type: ignore[index]
    print(f"\n{c['on']['items']} new items in 10 feeds, one `news-monitor poll` "  # type: ignore[index]
          f"(median of {args.runs}; peak RSS: the highest):\n")
    print(common.table(
        ["full_text", "wall s", "CPU s", "peak RSS MiB", "article pages", "pages/s"],
        [(way, c[way]["wall_s"], c[way]["cpu_s"], c[way]["peak_rss_mib"],  # type: ignore[index]
          c[way]["pages"], c["pages_per_s"] if way == "on" else "-")  # type: ignore[index]
         for way in WAYS]))
    print(common.machine())
    common.save_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
