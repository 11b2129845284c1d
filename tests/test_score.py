"""The graded score: paired cases for each row of score.WEIGHTS, on the shipped rules.

Each pair differs in one respect and must score in that order; the scores come
from the real matcher's evidence, so a change to the weights or to the
evidence shows here.
"""

from __future__ import annotations

import pytest

from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules, shipped_rules_dir
from monitor.score import WEIGHTS, grade

_FILLER = ("Officials also discussed rail tariffs, the grain harvest, a new airport terminal "
           "and road repairs at length, with figures for each region and each month. ")
# Words between a topic and its event that name neither (about 60 characters).
_LINE = "whose main line runs from the west of the country to the sea"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(shipped_rules_dir())


@pytest.fixture(scope="module")
def matcher(rules: RuleSet) -> Matcher:
    return Matcher(rules)


def score(rules: RuleSet, matcher: Matcher, title: str, summary: str = "",
          rule: str = "cpc-disruption") -> float:
    [m] = [m for m in matcher.match(title, summary) if m.rule_id == rule]
    return grade(next(r for r in rules.rules if r.id == rule), m.evidence)


#: (row of WEIGHTS, stronger (title, summary), weaker (title, summary))
PAIRS = [
    ("topic_in_title",
     ("CPC halts loadings after storm", "Tankers wait at Novorossiysk."),
     ("Storm halts loadings at Black Sea port", "The CPC terminal was shut after the storm.")),
    ("topic_in_body",
     ("CPC halts loadings after storm", "The Caspian Pipeline Consortium said tankers wait."),
     ("CPC halts loadings after storm", "The port authority said tankers wait.")),
    ("context_in_title",
     ("CPC suspends operations", "The Caspian Pipeline Consortium cited a storm."),
     ("CPC statement on operations", "The Caspian Pipeline Consortium cited a storm.")),
    ("title_more / title_more_max",
     ("CPC halts loadings after storm damages moorings", ""),
     ("CPC halts loadings", "")),
    ("body_context / body_max",
     ("CPC suspends loadings", "The consortium cited a storm that damaged moorings."),
     ("CPC suspends loadings", "The consortium cited a storm.")),
    ("exact",
     ("Caspian Pipeline Consortium halts loadings", ""),
     ("Caspian Pipline Consortium halts loadings", "")),
    ("near_chars / near",
     ("Kazakh oil news", "The Caspian Pipeline Consortium halted loadings on Monday."),
     ("Kazakh oil news", "The Caspian Pipeline Consortium, " + _LINE + ", halted work.")),
    ("close_chars / close",
     ("Kazakh oil news", "The Caspian Pipeline Consortium, " + _LINE + ", halted work."),
     ("Kazakh oil news", "The Caspian Pipeline Consortium, " + _LINE + " and is owned by "
                         "several companies and states, as its founding papers set out, "
                         "halted work.")),
    ("deep_chars / deep",
     ("Kazakhstan budget review", "The Caspian Pipeline Consortium halted loadings."),
     ("Kazakhstan budget review", _FILLER * 4 + "The Caspian Pipeline Consortium halted "
                                               "loadings.")),
]


def test_every_weight_has_its_pair() -> None:
    rows = {name for row, _, _ in PAIRS for name in row.split(" / ")}
    assert rows == set(WEIGHTS) - {"base"}


@pytest.mark.parametrize(("row", "strong", "weak"), PAIRS, ids=[p[0] for p in PAIRS])
def test_each_weight_orders_its_pair(rules: RuleSet, matcher: Matcher, row: str,
                                     strong: tuple[str, str], weak: tuple[str, str]) -> None:
    assert score(rules, matcher, *strong) > score(rules, matcher, *weak)


def test_a_headline_naming_topic_and_event_outranks_a_vaguer_one_and_a_passing_mention(
        rules: RuleSet, matcher: Matcher) -> None:
    """The desk's order: topic and its event in the headline, then the topic with a
    vaguer event, then a passing mention; none of them at the ceiling."""
    event = score(rules, matcher, "Drone attack halts loadings at CPC terminal",
                  "The Caspian Pipeline Consortium said loadings stopped.")
    vaguer = score(rules, matcher, "CPC terminal under inspection",
                   "The Caspian Pipeline Consortium said loadings stopped.")
    passing = score(rules, matcher, "Kazakhstan's week in review",
                    _FILLER * 3 + "Separately, the Caspian Pipeline Consortium said some "
                    "loadings were briefly suspended.")
    assert 90 <= event < 100
    assert 75 <= vaguer < event
    assert 0 <= passing <= 50


def test_only_the_fullest_evidence_reaches_100(rules: RuleSet, matcher: Matcher) -> None:
    """Four distinct event words in the headline, the topic and more of them in the
    summary, all exact and close: the ceiling; the same headline alone stays below."""
    title = "Drone attack halts CPC loadings after storm damages moorings"
    best = score(rules, matcher, title, "The Caspian Pipeline Consortium halted loadings "
                 "after a storm damaged two moorings and a drone struck a pumping station.")
    assert best == 100.0
    assert score(rules, matcher, title) < 95
