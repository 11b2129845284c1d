"""The language guess (``monitor/language.py``) against the labelled sets' ``lang``.

    .venv/bin/python bench/bench_language.py [--json PATH] [--smoke]

Per set: items whose guess is right, unsure (None) or wrong, from the title and
summary together (what a poll hands the guess) and from the title alone (a
headline-only feed); the story sets A, C, D, E (title, summary), the held-out
articles (title, lede) and the Telegram posts (text). Then the guess's cost
per item. The guess was shaped on sets A and C and the Telegram posts (its
link rule came from them); D, E and the articles were read, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import bench_match
import common

from monitor.language import guess_language

DATA = common.REPO / "bench" / "data"
SETS = ("stories-a", "stories-c", "stories-d", "stories-e", "articles-en-a", "articles-en-b",
        "articles-rukk-a", "articles-rukk-b", "telegram")


def rows(name: str) -> list[tuple[str, str, str]]:
    """(lang, title, summary) of each item of ``bench/data/NAME.jsonl``."""
    path = DATA / f"{name}.jsonl"
    if not path.exists():
        return []
    return [(r["lang"], r.get("title") or "", r.get("summary") or r.get("lede") or r.get("text")
             or "") for r in bench_match.read_jsonl(path)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--smoke", action="store_true", help="a few items, to see that it runs")
    a = ap.parse_args()
    figures: dict[str, dict[str, int]] = {}
    every: list[tuple[str, str, str]] = []
    print("| set | read | items | right | unsure | wrong |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in SETS[:2] if a.smoke else SETS:
        items = rows(name)[:10] if a.smoke else rows(name)
        every += items
        for read in ("title + summary", "title alone"):
            if read == "title alone" and not any(title for _, title, _ in items):
                continue  # Telegram posts have no title of their own
            counts = {"items": len(items), "right": 0, "unsure": 0, "wrong": 0}
            for lang, title, summary in items:
                guess = guess_language(title, summary) if read != "title alone" else \
                    guess_language(title)
                counts["right" if guess == lang else "unsure" if guess is None else "wrong"] += 1
            figures[f"{name} | {read}"] = counts
            n = counts["items"] or 1
            print(f"| {name} | {read} | {counts['items']} | {counts['right']} "
                  f"({counts['right'] / n:.1%}) | {counts['unsure']} | {counts['wrong']} |")
    runs = 3 if a.smoke else 20
    start = time.perf_counter()
    for _ in range(runs):
        for _, title, summary in every:
            guess_language(title, summary)
    per_item = (time.perf_counter() - start) / runs / max(1, len(every))
    print(f"\nguess: {per_item * 1e6:.1f} us per item (title + summary), {len(every)} items")
    if a.json:
        a.json.write_text(json.dumps({"sets": figures, "us_per_item": per_item * 1e6}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
