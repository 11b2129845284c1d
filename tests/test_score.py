"""The graded score: paired cases for each row of score.WEIGHTS, on the shipped rules.

Each pair differs in one respect and must score in that order; the scores come
from the real matcher's evidence, so a change to the weights or to the
evidence shows here.
"""

from __future__ import annotations

import pytest

from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules, shipped_rules_dir
from monitor.score import grade

_FILLER = ("Officials also discussed rail tariffs, the grain harvest, a new airport terminal "
           "and road repairs at length, with figures for each region and each month. ")


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
    ("context_in_title",
     ("CPC suspends loadings", "The consortium cited a storm at Novorossiysk."),
     ("CPC statement on Novorossiysk", "The consortium suspended loadings after a storm.")),
    ("exact",
     ("Caspian Pipeline Consortium halts loadings", ""),
     ("Caspian Pipline Consortium halts loadings", "")),
    ("near / close",
     ("Kazakh oil news", "The Caspian Pipeline Consortium halted loadings on Monday."),
     ("Kazakh oil news", "The Caspian Pipeline Consortium, which carries most of the "
                         "country's crude to the Black Sea from the Tengiz field and others, "
                         "halted loadings.")),
    ("more_context",
     ("CPC halts loadings after storm damages moorings", ""),
     ("CPC halts loadings", "")),
    ("deep_chars / deep",
     ("Kazakhstan budget review", "The Caspian Pipeline Consortium halted loadings."),
     ("Kazakhstan budget review", _FILLER * 4 + "The Caspian Pipeline Consortium halted "
                                               "loadings.")),
]


@pytest.mark.parametrize(("row", "strong", "weak"), PAIRS, ids=[p[0] for p in PAIRS])
def test_each_weight_orders_its_pair(rules: RuleSet, matcher: Matcher, row: str,
                                     strong: tuple[str, str], weak: tuple[str, str]) -> None:
    assert score(rules, matcher, *strong) > score(rules, matcher, *weak)


def test_a_headline_naming_topic_and_event_outranks_a_passing_mention(
        rules: RuleSet, matcher: Matcher) -> None:
    headline = score(rules, matcher, "Drone strike halts CPC loadings at Novorossiysk",
                     "The Caspian Pipeline Consortium said loadings stopped.")
    passing = score(rules, matcher, "Kazakhstan's week in review",
                    _FILLER * 3 + "Separately, the Caspian Pipeline Consortium said some "
                    "loadings were briefly suspended.")
    assert headline >= 90 and passing <= 60
    assert 0 <= passing < headline <= 100


def test_scores_stay_within_bounds(rules: RuleSet, matcher: Matcher) -> None:
    best = score(rules, matcher, "CPC halts loadings at Novorossiysk after storm damages "
                 "moorings", "The Caspian Pipeline Consortium halted loadings after a storm "
                 "damaged two moorings and a drone struck a pumping station.")
    assert best == 100.0
