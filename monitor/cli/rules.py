"""The ``rules`` commands: one rule's verdict on a text, the rules' quality on
a labelled corpus, and a backtest of a rule against the stored items
(the scoring is :mod:`monitor.evaluate`'s).

    news-monitor rules test RULE TEXT [--summary TEXT]
    news-monitor rules eval CORPUS.jsonl [--rules-dir DIR]
    news-monitor rules backtest RULE [--since 30d]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import MonitorError, RuleFileError
from monitor.models import isoformat_z

if TYPE_CHECKING:
    from monitor.match import Explanation
    from monitor.models import Evidence
    from monitor.rules import Rule, RuleSet
    from monitor.settings import Settings


#: ``rules test``'s exit status when the rule does not match (2 is argparse's bad usage).
NO_MATCH = 3
#: Terms named when a list is summed up ("halt*, suspend*, ... 150 terms").
TERMS_SHOWN = 6


def cmd_rules_test(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    rules = _one_rule(settings, args.rule)
    rule = rules.rules[0]
    why = common.matcher(rules).explain(rule.id, args.text, args.summary or "")
    print("\n".join(explain_lines(why, rule)))
    return 0 if why.matched else NO_MATCH


def explain_lines(why: Explanation, rule: Rule) -> list[str]:
    """``rules test``'s report: the verdict, then term by term what led to it."""
    m = why.match
    if m is not None:
        lines = [f"MATCH {rule.id} ({rule.severity}) score {m.score:.1f}"]
        lines += [f"  {_evidence(e)}" for e in m.evidence]
        lines += [f"  require {common.safe(g.name)}: met by "
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
        name = f"  require {common.safe(g.name)}:"
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
    return [f"{prefix} {common.safe(m.text)!r} ({m.field}[{m.start}:{m.end}]) is spelt too "
            f"unlike {common.safe(m.word)!r} of term "
            f"{common.safe(m.term)!r} ({m.similarity:.1f}, below fuzzy {m.fuzzy:g})"
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
    return (f"{e.field}[{e.start}:{e.end}] {common.safe(e.text)!r} ~ term "
            f"{common.safe(e.term)!r} ({e.score:.1f})")


def _spot(e: Evidence) -> str:
    return f"{common.safe(e.text)!r} ({e.field}[{e.start}:{e.end}])"


def _terms(terms: tuple[str, ...]) -> str:
    """A term list shortened: the first few, then how many in all."""
    shown = ", ".join(common.safe(t) for t in terms[:TERMS_SHOWN])
    return shown if len(terms) <= TERMS_SHOWN else f"{shown}, … {len(terms)} terms"


def cmd_rules_eval(args: argparse.Namespace) -> int:
    from monitor.evaluate import evaluate, format_report

    settings = common.settings(args)
    rules = common.rules(settings) if not args.rules_dir else _rules_from(Path(args.rules_dir))
    stream, source = common.open_input(args.corpus)
    try:
        report = evaluate(common.matcher(rules), list(common.read_jsonl(stream, source)))
    finally:
        if stream is not sys.stdin:
            stream.close()
    if not report.labelled:  # precision 0.000 would read as a verdict on the rules
        raise common.fail(f"{source}: no item has a 'labels' field (the rules it should hit, "
                          "[] for none, as in dev.jsonl): nothing to score the rules against")
    print("\n".join(common.safe(line) for line in format_report(report).splitlines()))
    if report.labelled < report.items:
        print(f"news-monitor: warning: {source}: {report.items - report.labelled} of "
              f"{report.items} items have no 'labels' field; counted as hitting no rule",
              file=sys.stderr)
    return 0


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from monitor.evaluate import backtest

    settings = common.settings(args)
    rules = _one_rule(settings, args.rule)
    rule = rules.rules[0]
    matcher = common.matcher(rules)
    since = common.parse_since(args.since)
    store = common.store(settings)
    try:
        deployed = {(h.guid, h.feed_url) for h in store.list_hits(since=since, rule_id=rule.id)}
        result = backtest(matcher, store.iter_items(since=since), deployed)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    for c in result.caught:
        print(f"{'+' if c.new else ' '} {isoformat_z(c.published)}  {c.match.score:5.1f}  "
              f"{common.safe(c.title)[:80]}  [{common.safe(', '.join(c.terms))[:60]}]")
    print(f"\n{rule.id}: {len(result.caught)} of {result.scanned} stored items would match"
          + (f" since {isoformat_z(since)}" if since else "")
          + f"; {len(result.new)} not caught by the deployed rule (+), "
            f"{len(result.lost)} caught by it that this version would drop")
    return 0


def _one_rule(settings: Settings, ref: str) -> RuleSet:
    """A rule by id from the configured rules, or a rule file by path (an edit)."""
    from monitor.rules import RuleSet, load_rule_file

    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            return RuleSet((load_rule_file(path),))
        except RuleFileError as e:
            raise common.fail(e.problems) from e
    rules = common.rules(settings)
    rule = rules.get(ref)
    if rule is None:
        raise common.fail(f"no rule {ref!r} (rules: {', '.join(rules.ids)})")
    return RuleSet((rule,))


def _rules_from(directory: Path) -> RuleSet:
    from monitor.rules import load_rules

    try:
        return load_rules(directory)
    except RuleFileError as e:
        raise common.fail(e.problems) from e


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("rules", help="test, evaluate and backtest watch rules")
    rs = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    t = rs.add_parser("test", help="the verdict of one rule on a text, term by term",
                      description="One rule's verdict on a text, term by term: the terms "
                                  "found, the require groups met or not, the exclusions "
                                  f"that fired. Exit 0 when it matches, {NO_MATCH} when not.")
    t.add_argument("rule", help="a rule id, or the path of a rule file")
    t.add_argument("text", help="the title to test")
    t.add_argument("--summary", help="a summary to test with it")
    t.set_defaults(func=cmd_rules_test)
    e = rs.add_parser("eval", help="precision, recall and F1 on a labelled JSON Lines corpus")
    e.add_argument("corpus", help="JSON Lines: id, title, summary, lang, labels (the "
                                     "rules each item should hit), as in dev.jsonl")
    e.add_argument("--rules-dir", metavar="DIR", help="evaluate the rules of this folder instead")
    e.set_defaults(func=cmd_rules_eval)
    b = rs.add_parser("backtest", help="what a rule (by id, or an edited file) would have "
                                       "caught in the stored items")
    b.add_argument("rule", help="a rule id, or the path of a rule file")
    b.add_argument("--since", default="30d", help="how far back (default 30d), or an ISO date")
    b.set_defaults(func=cmd_rules_backtest)
