"""Identical verdicts: the matcher of this checkout against the one of a git revision.

Run from the repository root::

    .venv/bin/python bench/check_verdicts.py                  # against main
    .venv/bin/python bench/check_verdicts.py --rev HEAD~3 --corpus 'bench/data/articles-*.jsonl'

Both matchers (``monitor/match.py`` as it is here, and as it is at ``--rev``,
loaded beside it with the same normalisation and rules) match every item of
every corpus it finds, and every hit is compared: rule, score and each
evidence (field, term, text, offsets, score). Corpora: the shared dev corpus
(``../shared/corpus/dev.jsonl``, when beside the checkout), the generated mix
of ``bench_match.py`` and the poll bench's entries, with the 4 shipped rules
and with 200 rules; and, when ``--corpus`` finds article files (title, lede,
body), the realistic mix and the 3 KB bodies that ``bench_match.py`` builds
from them, and each article as title + lede and as title + body. On the dev
corpus, :meth:`Matcher.explain` is compared too, for every rule. Exits 1 on
the first difference, printing it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from collections.abc import Iterable
from pathlib import Path

import bench_match
import common

from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules, shipped_rules_dir

DEV = common.REPO.parent / "shared" / "corpus" / "dev.jsonl"


def reference(rev: str) -> types.ModuleType:
    """``monitor/match.py`` as it is at ``rev``, imported under another name."""
    return common.module_at(rev, "monitor/match.py", "monitor._match_reference")


def hits(matcher: object, items: Iterable[tuple[str, str, str]]) -> Iterable[tuple[str, list]]:
    for key, title, summary in items:
        yield key, [(m.rule_id, m.score, m.evidence) for m in matcher.match(title, summary)]


def compare(name: str, rules: RuleSet, ref: types.ModuleType,
            items: list[tuple[str, str, str]], explain: bool = False) -> int:
    ours, theirs = Matcher(rules), ref.Matcher(rules)
    count = 0
    for (key, a), (_, b) in zip(hits(ours, items), hits(theirs, items), strict=True):
        if a != b:
            print(f"DIFFERENT: {name}: item {key}\n  here: {a}\n  ref:  {b}")
            raise SystemExit(1)
        count += len(a)
    if explain:
        for key, title, summary in items:
            for rule_id in rules.ids:
                a, b = ours.explain(rule_id, title, summary), theirs.explain(rule_id, title,
                                                                             summary)
                if repr(a) != repr(b):
                    print(f"DIFFERENT: {name}: explain {rule_id} on {key}\n  here: {a}\n"
                          f"  ref:  {b}")
                    raise SystemExit(1)
    print(f"identical: {name}: {len(items):,} items, {count:,} hits"
          + (", explain of every rule" if explain else ""), flush=True)
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="main", help="the git revision to compare with")
    ap.add_argument("--corpus", default=bench_match.DEFAULT_CORPUS,
                    help="article files, a glob (default: %(default)s)")
    ap.add_argument("--items", type=int, default=10_000, help="items per generated mix")
    a = ap.parse_args()
    ref = reference(a.rev)
    shipped = load_rules(shipped_rules_dir())
    with tempfile.TemporaryDirectory() as tmp:
        large = bench_match.large_rules(Path(tmp))
    rule_sets = [("4 rules", shipped), (f"{len(large)} rules", large)]
    corpora: list[tuple[str, list[tuple[str, str, str]], bool]] = []
    if DEV.exists():
        dev = bench_match.read_jsonl(DEV)
        corpora.append(("dev corpus", [(r["id"], r["title"], r["summary"]) for r in dev], True))
    else:
        print(f"skipped: {DEV} is not there")
    corpora.append(("generated mix", bench_match.generated_mix(a.items), False))
    corpora.append(("poll bench entries", [
        (it.guid, it.title, it.summary)
        for it in (common.make_item(feed, serial) for feed in range(100) for serial in range(40))],
        False))
    articles = bench_match.read_articles(a.corpus)
    if articles:
        corpora.append(("articles, title + lede",
                        [(r["id"], r["title"], r["lede"]) for r in articles], False))
        corpora.append(("articles, title + body",
                        [(r["id"], r["title"], r["body"]) for r in articles], False))
        corpora.append(("realistic mix", bench_match.realistic_mix(articles, a.items), False))
        corpora.append(("3 KB bodies", bench_match.body_mix(articles, a.items // 5), False))
    else:
        print(f"skipped: no article files match {a.corpus}")
    for label, rules in rule_sets:
        for name, items, explain in corpora:
            compare(f"{name}, {label}", rules, ref, items, explain and label == "4 rules")
    print(f"verdicts identical to {a.rev}'s matcher on every corpus")
    return 0


if __name__ == "__main__":
    sys.exit(main())
