"""Story placement with part of its vocabulary dropped: how placement fares on wording
its lexicon does not know, as on reports it was not tuned on.

    .venv/bin/python bench/bench_stories_dropout.py [--share 0.3] [--seeds 30] [SET ...]

Each seed drops a random ``share`` of the concept lexicon's words, then measures each
set (default: A and C) content alone and with dates; the figures are means over the
seeds. With 30 % dropped, the placer before the time signal and the broader
vocabulary scored on A and C about what it scored on the held-out set B. It cannot
value words added to the lexicon (it only takes words away), only what the other
signals do without them. Never run it on the held-out set B.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stories import assign, bcubed, load

from monitor import stories

DATA = Path(__file__).parent / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", type=Path,
                    default=[DATA / "stories-a.jsonl", DATA / "stories-c.jsonl"])
    ap.add_argument("--share", type=float, default=0.3)
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    sets = {p.stem: load(p) for p in args.sets}
    exact, prefix = dict(stories._EXACT), dict(stories._PREFIX)
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    try:
        for seed in range(args.seeds):
            rng = random.Random(seed)
            stories._EXACT.clear()
            stories._EXACT.update({k: v for k, v in exact.items() if rng.random() >= args.share})
            stories._PREFIX.clear()
            stories._PREFIX.update({k: v for k, v in prefix.items()
                                    if rng.random() >= args.share})
            stories._concept.cache_clear()
            stories._keys_of.cache_clear()
            for name, rows in sets.items():
                for mode, dates in (("content_alone", False), ("with_dates", True)):
                    r = bcubed(rows, assign(rows, dates=dates))
                    for m in ("precision", "recall", "f1"):
                        sums[name, mode, m] += r[m] / args.seeds
    finally:
        stories._EXACT.clear()
        stories._EXACT.update(exact)
        stories._PREFIX.clear()
        stories._PREFIX.update(prefix)
        stories._concept.cache_clear()
        stories._keys_of.cache_clear()
    for name in sets:
        print(f"{name}, {args.share:.0%} of the vocabulary dropped ({args.seeds} seeds): "
              + "  ".join(f"{mode} P {sums[name, mode, 'precision']:.3f} "
                          f"R {sums[name, mode, 'recall']:.3f} F1 {sums[name, mode, 'f1']:.3f}"
                          for mode in ("content_alone", "with_dates")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
