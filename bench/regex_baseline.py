"""The plain regex baseline of ``bench_match.py``: the rules as regexes one would write by hand.

Run as the whole-process baseline (it prints a JSON line per hit, as
``news-monitor match`` does)::

    .venv/bin/python bench/regex_baseline.py RULES_DIR ITEMS.jsonl

Per rule, one case-insensitive, word-bounded alternation of its topic terms
(``\\b(?:caspian[\\W_]+pipeline|cpc|...)\\b``; ``word*`` is ``word\\w*``), one
per ``require`` group and one of its exclusions: a hit is the topic found,
each group found, no exclusion found, in the title or the summary. No
``near``, no distances, no stems, no typos: less than the rules say, so it
is a floor for what matching costs, not a matcher of the same verdicts.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from monitor.rules import RuleSet, Term, load_rules


def _pattern(terms: Iterable[Term]) -> re.Pattern[str] | None:
    parts = []
    for term in terms:
        words = re.findall(r"[^\W_]+\*?", term.text)
        body = r"[\W_]+".join(re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w)
                              for w in words)
        parts.append(body)
    if not parts:
        return None
    # Longest first, as a hand-written alternation puts them.
    alternation = "|".join(sorted(set(parts), key=len, reverse=True))
    return re.compile(rf"\b(?:{alternation})\b", re.IGNORECASE)


class Baseline:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = [(r.id, _pattern(r.terms),
                       [p for p in (_pattern(g.terms) for g in r.require) if p is not None],
                       _pattern(r.exclude)) for r in rules.rules]

    def match(self, title: str, summary: str) -> list[str]:
        text = f"{title}\n{summary}"
        out = []
        for rule_id, topic, groups, exclude in self.rules:
            if topic is None or not topic.search(text):
                continue
            if all(g.search(text) for g in groups) and not (exclude and exclude.search(text)):
                out.append(rule_id)
        return out


def main(argv: list[str]) -> int:
    baseline = Baseline(load_rules(Path(argv[0])))
    out = sys.stdout
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            for rule_id in baseline.match(str(rec.get("title") or ""),
                                          str(rec.get("summary") or "")):
                out.write(json.dumps({"id": rec.get("id"), "rule": rule_id}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
