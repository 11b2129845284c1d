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

from monitor.match import Explanation, Matcher
from monitor.models import Evidence, Match, StoredHit
from monitor.rules import Rule
from monitor.text import strip_control

__all__ = ["Backtest", "Caught", "Counts", "Miss", "Report", "RuleReport", "backtest",
           "evaluate", "explain_lines", "feedback_items", "format_report"]

#: Terms named when a list is summed up ("halt*, suspend*, ... 150 terms").
TERMS_SHOWN = 6


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
    as hitting no rule; ``Report.labelled`` says how many had them. An item
    with ``judged`` (a list of rule ids: the verdicts of :func:`feedback_items`)
    counts for those rules only.
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
        # Feedback labels an item for the rules judged on it only (``judged``):
        # a verdict on one rule's hit says nothing about the others.
        judged = item.get("judged")
        for rid in rule_ids:
            if isinstance(judged, (list, tuple, set, frozenset)) and rid not in judged:
                continue
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


def feedback_items(judged: Iterable[StoredHit]) -> list[dict[str, object]]:
    """Stored hits with a verdict as a labelled corpus for :func:`evaluate`: a
    ``relevant`` hit labels its item with its rule, a ``noise`` one without it,
    and each item counts only for the rules judged on it."""
    by_item: dict[int, dict[str, Any]] = {}
    for h in judged:
        rec = by_item.setdefault(h.item_id, {
            "id": h.guid, "title": h.title, "summary": h.summary, "lang": h.lang or "?",
            "labels": [], "judged": []})
        rec["judged"].append(h.rule_id)
        if h.feedback == "relevant":
            rec["labels"].append(h.rule_id)
    return list(by_item.values())


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


# -- one rule's verdict on a text, explained (``rules test``, the web's rule page) --


def _safe(text: object) -> str:
    return strip_control(str(text))


def explain_lines(why: Explanation, rule: Rule) -> list[str]:
    """``rules test``'s report: the verdict, then term by term what led to it."""
    m = why.match
    if m is not None:
        lines = [f"MATCH {rule.id} ({rule.severity}) score {m.score:.1f}"]
        lines += [f"  {_evidence(e)}" for e in m.evidence]
        lines += [f"  require {_safe(g.name)}: met by "
                  + ", ".join(_spot(e) for e in _unique(g.found)) for g in why.groups]
        return lines
    lines = [f"no match: {rule.id} does not match this text"]
    if not why.topic and not why.out_of_context:
        lines.append(f"  topic: no term found ({_terms(why.terms)})")
        lines += _near_misses(why, "topic", "  topic:")
    lines += [f"  topic: {_evidence(e)}" for e in _unique(why.topic)]
    for c in why.out_of_context:
        where = _within(c.within) if c.within is not None else "anywhere in the item"
        lines.append(f"  topic: {_evidence(c.evidence)} does not count: none of its near "
                     f"terms ({_terms(c.near)}) {where}")
    for v in why.vetoes:
        if v.within is None:
            effect = "cancels the hit (anywhere in the item)"
        elif v.cancelled:
            effect = (f"cancels {', '.join(_spot(e) for e in _unique(v.cancelled))} "
                      f"({_within(v.within)})")
        else:
            effect = f"cancels nothing: no topic term {_within(v.within)}"
        lines.append(f"  exclude: {_evidence(v.evidence)} {effect}")
    if why.topic and not why.topic_left:
        lines.append("  topic: every topic term found is excluded")
    for g in why.groups:
        name = f"  require {_safe(g.name)}:"
        if g.met:
            lines.append(f"{name} met by " + ", ".join(_spot(e) for e in _unique(g.found)))
        elif g.too_far and why.topic_left:
            lines.append(f"{name} " + ", ".join(_spot(e) for e in _unique(g.too_far))
                         + f" not {_within(g.within)} of a topic term")
        elif g.too_far:
            lines.append(f"{name} found " + ", ".join(_spot(e) for e in _unique(g.too_far))
                         + " but no topic term to be near")
        else:
            lines.append(f"{name} nothing found ({_terms(g.terms)})")
            lines += _near_misses(why, g.name, name)
    return lines


def _near_misses(why: Explanation, where: str, prefix: str) -> list[str]:
    """A word spelt a little too unlike a term's word: the ``fuzzy`` threshold missed."""
    return [f"{prefix} {_safe(m.text)!r} ({m.field}[{m.start}:{m.end}]) is spelt too "
            f"unlike {_safe(m.word)!r} of term "
            f"{_safe(m.term)!r} ({m.similarity:.1f}, below fuzzy {m.fuzzy:g})"
            for m in why.near_misses if m.where == where]


def _within(words: int | None) -> str:
    return f"within {words} word{'' if words == 1 else 's'}"


def _unique(found: tuple[Evidence, ...]) -> list[Evidence]:
    """One entry per span of text (several terms may find it), the best first."""
    best: dict[tuple[str, int, int], Evidence] = {}
    for e in sorted(found, key=lambda e: -e.score):
        best.setdefault((e.field, e.start, e.end), e)
    return sorted(best.values(), key=lambda e: (e.field != "title", e.start))


def _evidence(e: Evidence) -> str:
    return (f"{e.field}[{e.start}:{e.end}] {_safe(e.text)!r} ~ term "
            f"{_safe(e.term)!r} ({e.score:.1f})")


def _spot(e: Evidence) -> str:
    return f"{_safe(e.text)!r} ({e.field}[{e.start}:{e.end}])"


def _terms(terms: tuple[str, ...]) -> str:
    """A term list shortened: the first few, then how many in all."""
    shown = ", ".join(_safe(t) for t in terms[:TERMS_SHOWN])
    return shown if len(terms) <= TERMS_SHOWN else f"{shown}, … {len(terms)} terms"
