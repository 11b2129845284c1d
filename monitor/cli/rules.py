"""The ``rules`` commands: one rule's verdict on a text, the rules' quality on
a labelled corpus, and a backtest of a rule against the stored items
(the scoring is :mod:`monitor.evaluate`'s).

    news-monitor rules test RULE TEXT [--summary TEXT]
    news-monitor rules eval CORPUS.jsonl|--feedback [--rules-dir DIR]
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
    from monitor.rules import RuleSet
    from monitor.settings import Settings


#: ``rules test``'s exit status when the rule does not match (2 is argparse's bad usage).
NO_MATCH = 3


def cmd_rules_test(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    rules = _one_rule(settings, args.rule)
    rule = rules.rules[0]
    from monitor.evaluate import explain_lines

    why = common.matcher(rules).explain(rule.id, args.text, args.summary or "")
    print("\n".join(explain_lines(why, rule)))
    return 0 if why.matched else NO_MATCH


def cmd_rules_eval(args: argparse.Namespace) -> int:
    from monitor.evaluate import evaluate, feedback_items, format_report

    settings = common.settings(args)
    rules = common.rules(settings) if not args.rules_dir else _rules_from(Path(args.rules_dir))
    if args.feedback:
        if args.corpus:
            raise common.fail("give a corpus or --feedback, not both")
        store = common.store(settings)
        try:
            corpus = feedback_items(store.judged_hits())
        except MonitorError as e:
            raise common.fail(str(e)) from e
        finally:
            store.close()
        source = "feedback"
        if not corpus:
            raise common.fail("no verdict stored yet: mark hits relevant or noise in the "
                              "web view (or POST /api/hits/ID/feedback) first")
        report = evaluate(common.matcher(rules), corpus)
    elif not args.corpus:
        raise common.fail("give a labelled corpus (JSON Lines), or --feedback")
    else:
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
    e.add_argument("corpus", nargs="?", help="JSON Lines: id, title, summary, lang, labels "
                                               "(the rules each item should hit), as in dev.jsonl")
    e.add_argument("--feedback", action="store_true",
                   help="score against the stored verdicts instead: a hit marked relevant "
                        "is a true positive, one marked noise a false one")
    e.add_argument("--rules-dir", metavar="DIR", help="evaluate the rules of this folder instead")
    e.set_defaults(func=cmd_rules_eval)
    b = rs.add_parser("backtest", help="what a rule (by id, or an edited file) would have "
                                       "caught in the stored items")
    b.add_argument("rule", help="a rule id, or the path of a rule file")
    b.add_argument("--since", default="30d", help="how far back (default 30d), or an ISO date")
    b.set_defaults(func=cmd_rules_backtest)
