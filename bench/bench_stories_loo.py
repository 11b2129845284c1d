"""Leave one set out: tune placement's time and join thresholds on one labelled story
set, read the choice on the other. A check against tuning to one set's items.

    .venv/bin/python bench/bench_stories_loo.py [SET SET ...]   # default: sets A and C, ~15 s

For each set, the grid's choice is the one with the best mean of content-alone and
with-dates F1 among those keeping precision (content alone 0.90, with dates and
re-timed 0.95; see bench_stories.retimed); then the same thresholds on the other
set, and PLACE's own on both. Never run it on the held-out set B.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stories import assign, bcubed, load, retimed

from monitor import stories

DATA = Path(__file__).parent / "data"
GRID = [{"join": j, "near_join": nj, "near_hours": nh}
        for j, nj, nh in itertools.product((0.30, 0.35, 0.40), (0.15, 0.20, 0.25, 0.30),
                                           (12, 24, 36)) if nj <= j]
FLOORS = {"content_alone": 0.90, "with_dates": 0.95, "retimed": 0.95}


def measure(rows: list[dict[str, Any]], over: dict[str, float]) -> dict[str, dict[str, float]]:
    kept = stories.PLACE
    stories.PLACE = {**kept, **over}
    try:
        return {"content_alone": bcubed(rows, assign(rows, dates=False)),
                "with_dates": bcubed(rows, assign(rows, dates=True)),
                "retimed": bcubed(rows, assign(retimed(rows), dates=True))}
    finally:
        stories.PLACE = kept


def line(r: dict[str, dict[str, float]]) -> str:
    return "  ".join(f"{k} {v['precision']:.3f}/{v['recall']:.3f}/{v['f1']:.3f}"
                     for k, v in r.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", type=Path,
                    default=[DATA / "stories-a.jsonl", DATA / "stories-c.jsonl"])
    args = ap.parse_args()
    sets = {p.stem: load(p) for p in args.sets}
    results = {name: [(g, measure(rows, g)) for g in GRID] for name, rows in sets.items()}
    own = {k: stories.PLACE[k] for k in GRID[0]}
    for name, rows in sets.items():
        print(f"PLACE {own} on {name}: {line(measure(rows, own))}")
    for tuned, rs in results.items():
        kept = [(g, r) for g, r in rs
                if all(r[k]["precision"] >= floor for k, floor in FLOORS.items())]
        if not kept:
            print(f"tuned on {tuned}: no choice keeps the precision floors {FLOORS}")
            continue
        g, r = max(kept, key=lambda gr: (gr[1]["content_alone"]["f1"]
                                         + gr[1]["with_dates"]["f1"]))
        print(f"tuned on {tuned}: {g}\n    {tuned}: {line(r)}")
        for other, ors in results.items():
            if other != tuned:
                print(f"    {other}: {line(next(r for gg, r in ors if gg == g))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
