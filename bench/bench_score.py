"""How the graded score spreads over real reporting: the shipped rules' hits on the
held-out articles and story sets, scored by this checkout's ``monitor/score.py``
and by a git revision's, side by side.

    .venv/bin/python bench/bench_score.py                 # against main
    .venv/bin/python bench/bench_score.py --rev HEAD~1 --json /tmp/score.json

Items: every article of ``bench/data/articles-*.jsonl`` as title + lede (what a
feed's summary holds) and the story sets ``stories-{a,c,d,e}.jsonl`` as title +
summary. Each is matched once, by this checkout's matcher; both ``grade``
functions score the same evidence, so the hits are the same by construction
and only the scores differ. Printed per score (``here``, ``--rev``): hits, the
share at 100, min / quartiles / max, distinct values, and the median of each
kind of hit a desk tells apart: the headline names the topic and its event
(``title: topic+context``), the topic only (``title: topic``), the body only.
``stories' leads``: each labelled story of the sets, per rule, by its best hit,
as a digest lists it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import bench_match
import common

from monitor.match import Matcher
from monitor.models import Evidence
from monitor.rules import Rule, load_rules, shipped_rules_dir
from monitor.score import grade

DATA = common.REPO / "bench" / "data"
STORY_SETS = ("a", "c", "d", "e")
Grade = Callable[[Rule, Sequence[Evidence]], float]


def reference(rev: str) -> types.ModuleType:
    """``monitor/score.py`` as it is at ``rev``, imported under another name."""
    return common.module_at(rev, "monitor/score.py", "monitor._score_reference")


Row = tuple[str, str, str, str | None]  # id, title, summary, the story's label


def corpora(smoke: bool) -> list[tuple[str, list[Row]]]:
    """(name, [(id, title, summary, story)]) of every set found."""
    out: list[tuple[str, list[Row]]] = []
    articles = bench_match.read_articles(str(DATA / "articles-*.jsonl"))
    if articles:
        out.append(("articles, title + lede",
                    [(r["id"], r["title"], r["lede"], None) for r in articles]))
    for s in STORY_SETS:
        path = DATA / f"stories-{s}.jsonl"
        if path.exists():
            out.append((f"stories-{s}", [(r["id"], r["title"], r.get("summary") or "",
                                          f"{s}:{r['story']}")
                                         for r in bench_match.read_jsonl(path)]))
    if smoke:
        out = [(name, items[:10]) for name, items in out[:2]]
    return out


def kind(topic_terms: set[str], evidence: Sequence[Evidence]) -> str:
    """Where the hit's evidence stands: what a desk reads first."""
    topic = any(e.field == "title" and e.term in topic_terms for e in evidence)
    context = any(e.field == "title" and e.term not in topic_terms for e in evidence)
    if topic:
        return "title: topic+context" if context else "title: topic"
    return "title: context only" if context else "body only"


KINDS = ("title: topic+context", "title: topic", "title: context only", "body only")


def summary(scores: Sequence[float]) -> dict[str, float]:
    if not scores:
        return {"hits": 0}
    q = statistics.quantiles(scores, n=4, method="inclusive") if len(scores) > 1 else \
        [scores[0]] * 3
    return {"hits": len(scores), "at_100": sum(s >= 100 for s in scores) / len(scores),
            "min": min(scores), "q1": q[0], "median": q[1], "q3": q[2], "max": max(scores),
            "distinct": len(set(scores))}


def line(label: str, s: dict[str, float]) -> str:
    if not s["hits"]:
        return f"| {label} | 0 | | | | |"
    return (f"| {label} | {s['hits']:.0f} | {s['at_100']:.0%} | {s['min']:.1f} / {s['q1']:.1f}"
            f" / {s['median']:.1f} / {s['q3']:.1f} / {s['max']:.1f} | {s['distinct']:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="main", help="the git revision to compare with")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--smoke", action="store_true", help="a few items, to see that it runs")
    a = ap.parse_args()
    rules = load_rules(shipped_rules_dir())
    by_id = {r.id: r for r in rules.rules}
    topics = {r.id: {t.text for t in r.terms} for r in rules.rules}
    matcher = Matcher(rules)
    graders: list[tuple[str, Grade]] = [("here", grade)]
    try:
        graders.append((a.rev, reference(a.rev).grade))
    except (OSError, subprocess.CalledProcessError) as e:  # no git, or no such revision
        print(f"skipped: {a.rev}'s score.py ({e})")
    # (score name, corpus or "all", kind or "all") -> scores
    scores: dict[tuple[str, str, str], list[float]] = {}
    # (score name, story, rule) -> its best hit: what a digest shows as the story's score
    leads: dict[tuple[str, str, str], float] = {}
    sets = corpora(a.smoke)
    for name, items in sets:
        for _, title, text, story in items:
            for m in matcher.match(title, text):
                k = kind(topics[m.rule_id], m.evidence)
                for label, g in graders:
                    s = g(by_id[m.rule_id], m.evidence)
                    assert 0 <= s <= 100 and round(s, 1) == s, (label, s)
                    for key in ((label, name, "all"), (label, "all", "all"),
                                (label, "all", k)):
                        scores.setdefault(key, []).append(s)
                    if story is not None:
                        lead = (label, story, m.rule_id)
                        leads[lead] = max(s, leads.get(lead, 0.0))
    for (label, _, _), s in leads.items():
        scores.setdefault((label, "stories' leads", "all"), []).append(s)
    figures = {" | ".join(k): summary(v) for k, v in scores.items()}
    print("| score | set | hits | at 100 | min / q1 / median / q3 / max | distinct |")
    print("| --- | --- | --- | --- | --- | --- |")
    names = [name for name, _ in sets] + ["all", "stories' leads"]
    for label, _ in graders:
        for name in names:
            print(line(f"{label} | {name}", summary(scores.get((label, name, "all"), []))))
    print("\n| score | kind of hit | hits | at 100 | min / q1 / median / q3 / max | distinct |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, _ in graders:
        for k in KINDS:
            print(line(f"{label} | {k}", summary(scores.get((label, "all", k), []))))
    if a.json:
        a.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
