"""Rule quality: against a labelled corpus (precision, recall and F1 per rule and
language), and against the stored items (a backtest).

This module owns how rules are scored against labelled items (the format of
``../shared/corpus/dev.jsonl``: ``id``, ``title``, ``summary``, ``lang``,
``labels``) and the text report of it, and what a rule, edited or deployed,
would catch among stored items next to what the deployed rule did catch
(:func:`backtest`). Pure: the caller reads the file or the store.

A rule with no hit on a slice of the corpus has precision 1.0 there (it raised
no false alarm), and a slice with no item of the rule's topic has recall 1.0;
the counts beside each figure show when that is the case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.match import Matcher
from monitor.models import Evidence, Match

__all__ = ["Backtest", "Caught", "Counts", "Miss", "Report", "RuleReport", "backtest",
           "evaluate", "format_report"]


@dataclass(slots=True)
class Counts:
    """True positives, false positives and false negatives of one rule on one slice."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Miss:
    """One wrong verdict: a false positive (with its evidence) or a false negative."""

    rule_id: str
    item_id: str
    lang: str
    title: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(slots=True)
class RuleReport:
    """One rule's counts, overall and per language."""

    rule_id: str
    overall: Counts = field(default_factory=Counts)
    by_lang: dict[str, Counts] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """The outcome of :func:`evaluate`."""

    items: int
    labelled: int  # items with a ``labels`` field (an empty list is a label: no rule)
    langs: tuple[str, ...]
    rules: dict[str, RuleReport]
    false_positives: list[Miss]
    false_negatives: list[Miss]

    @property
    def macro_precision(self) -> float:
        return _mean(r.overall.precision for r in self.rules.values())

    @property
    def macro_recall(self) -> float:
        return _mean(r.overall.recall for r in self.rules.values())

    @property
    def macro_f1(self) -> float:
        return _mean(r.overall.f1 for r in self.rules.values())


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def evaluate(matcher: Matcher, items: Iterable[Mapping[str, object]]) -> Report:
    """Match every item and compare the hits with its ``labels``.

    Labels naming rules the matcher does not have are ignored, so a corpus can
    be scored against a subset of the rules. An item without ``labels`` counts
    as hitting no rule; ``Report.labelled`` says how many had them.
    """
    rule_ids = matcher.rules.ids
    reports = {rid: RuleReport(rid) for rid in rule_ids}
    fps: list[Miss] = []
    fns: list[Miss] = []
    lang_count: dict[str, int] = {}
    n = labelled = 0
    for item in items:
        n += 1
        labelled += "labels" in item
        lang = str(item.get("lang") or "?")
        lang_count[lang] = lang_count.get(lang, 0) + 1
        title = str(item.get("title") or "")
        hits = {m.rule_id: m for m in matcher.match(title, str(item.get("summary") or ""))}
        labels = set(_labels(item.get("labels")))
        item_id = str(item.get("id", n))
        for rid in rule_ids:
            report = reports[rid]
            slices = (report.overall, report.by_lang.setdefault(lang, Counts()))
            hit, label = rid in hits, rid in labels
            for counts in slices:
                counts.tp += hit and label
                counts.fp += hit and not label
                counts.fn += label and not hit
            if hit and not label:
                fps.append(Miss(rid, item_id, lang, title, hits[rid].evidence))
            elif label and not hit:
                fns.append(Miss(rid, item_id, lang, title))
    langs = tuple(sorted(lang_count, key=lambda k: (-lang_count[k], k)))
    return Report(n, labelled, langs, reports, fps, fns)


def _labels(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return []


def format_report(report: Report) -> str:
    """A readable text report: false positives, false negatives, then the table.

    The table ends the report and its last line is the macro average, so the
    last ``rules + 2`` lines are the table with its header.
    """
    lines: list[str] = []
    lines.append(f"False positives ({len(report.false_positives)}):")
    for m in report.false_positives:
        lines.append(f"  {m.rule_id:20s} {m.item_id} [{m.lang}] {m.title}")
        for e in m.evidence:
            lines.append(f"      {e.field}[{e.start}:{e.end}] {e.text!r} <- {e.term!r} "
                         f"({e.score:.0f})")
    if not report.false_positives:
        lines.append("  none")
    lines.append(f"False negatives ({len(report.false_negatives)}):")
    for m in report.false_negatives:
        lines.append(f"  {m.rule_id:20s} {m.item_id} [{m.lang}] {m.title}")
    if not report.false_negatives:
        lines.append("  none")
    lines.append("")
    lines.append(f"{report.items} items; per language: precision/recall (positives)")
    width = max([len("macro average"), *(len(r) for r in report.rules)])
    header = f"{'rule':{width}s}  {'pos':>4s} {'tp':>4s} {'fp':>4s} {'fn':>4s}  " \
             f"{'prec':>5s} {'rec':>5s} {'F1':>5s}"
    for lang in report.langs:
        header += f"  {lang:>14s}"
    lines.append(header)
    for rid, r in report.rules.items():
        c = r.overall
        row = f"{rid:{width}s}  {c.tp + c.fn:4d} {c.tp:4d} {c.fp:4d} {c.fn:4d}  " \
              f"{c.precision:5.3f} {c.recall:5.3f} {c.f1:5.3f}"
        for lang in report.langs:
            lc = r.by_lang.get(lang, Counts())
            row += f"  {lc.precision:5.3f}/{lc.recall:5.3f}({lc.tp + lc.fn:2d})"
        lines.append(row)
    macro = f"{'macro average':{width}s}  {'':4s} {'':4s} {'':4s} {'':4s}  " \
            f"{report.macro_precision:5.3f} {report.macro_recall:5.3f} {report.macro_f1:5.3f}"
    lines.append(macro)
    return "\n".join(lines)


# -- backtest ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caught:
    """A stored item the rule under test matches."""

    guid: str
    feed: str
    title: str
    published: datetime
    match: Match
    new: bool  # the deployed rule has no hit on it

    @property
    def terms(self) -> list[str]:
        """The distinct texts its evidence matched, sorted."""
        return sorted({e.text for e in self.match.evidence})


@dataclass(frozen=True, slots=True)
class Backtest:
    """The outcome of :func:`backtest`. Items are keyed by (guid, feed URL)."""

    scanned: int
    caught: tuple[Caught, ...]  # newest first
    new: frozenset[tuple[str, str]]  # caught, and not by the deployed rule
    lost: frozenset[tuple[str, str]]  # caught by the deployed rule, and not by this one


def backtest(matcher: Matcher, items: Iterable[Mapping[str, Any]],
             deployed: Iterable[tuple[str, str]]) -> Backtest:
    """Match stored items (records of ``guid``, ``feed``, ``title``, ``summary``
    and ``published``, as :meth:`monitor.store.Store.iter_items` gives them)
    with the rule of ``matcher``, and compare with the (guid, feed) of the
    deployed rule's stored hits on the same items."""
    stored = frozenset(deployed)
    found: list[tuple[Mapping[str, Any], Match]] = []
    scanned = 0
    for rec in items:
        scanned += 1
        got = matcher.match(rec["title"], rec["summary"], rec.get("content") or "")
        if got:
            found.append((rec, got[0]))
    keys = frozenset((rec["guid"], rec["feed"]) for rec, _ in found)
    new = keys - stored
    caught = tuple(Caught(rec["guid"], rec["feed"], rec["title"], rec["published"], m,
                          (rec["guid"], rec["feed"]) in new)
                   for rec, m in sorted(found, key=lambda c: c[0]["published"], reverse=True))
    return Backtest(scanned, caught, new, stored - keys)
