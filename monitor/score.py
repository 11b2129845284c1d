"""A hit's score, 0-100: how strong its evidence is, so a digest shows the strongest first.

Pure, standard library only. :func:`grade` reads a hit's evidence against its
rule: where the terms stand (title or body), how exact they are, how close the
topic term is to its context, how many distinct context terms back it. The
headline and the body are counted apart, each capped, so that only the
fullest evidence reaches 100 (2 % of the held-out sets' hits,
``bench/bench_score.py``). The weights are one table, :data:`WEIGHTS`,
documented in ``rules/README.md`` with paired cases in ``tests/test_score.py``:
a change here changes both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from monitor.models import Evidence
from monitor.rules import Rule

__all__ = ["WEIGHTS", "grade"]

WEIGHTS: Mapping[str, float] = {
    # Every hit starts here: its topic and its context found, far apart, in the body.
    "base": 45,
    # The topic term in the headline: the story is about it, not a passing mention...
    "topic_in_title": 15,
    # ...and named again in the body: the summary is about it too.
    "topic_in_body": 3,
    # A context term in the headline too: the headline names the event...
    "context_in_title": 10,
    # ...and each distinct context term of the headline beyond the first, up to
    # "title_more_max": "drone attack halts loadings" names it more fully than "halts".
    "title_more": 5,
    "title_more_max": 15,
    # Each distinct context term of the body (summary, article), up to "body_max".
    "body_context": 2,
    "body_max": 6,
    # Every term spelt exactly; a fuzzy one costs half its distance from 100
    # (a word 88 % alike: -6) instead.
    "exact": 3,
    # The topic and its nearest context term in one field, at most this many
    # characters apart (about six words, then about twenty).
    "near_chars": 40,
    "near": 4,
    "close_chars": 120,
    "close": 2,
    # Off the headline, a topic first named this many characters into its field
    # (past the lede of a summary or an article) is a passing mention.
    "deep_chars": 300,
    "deep": -10,
}


def grade(rule: Rule, evidence: Sequence[Evidence],
          topic_terms: AbstractSet[str] | None = None) -> float:
    """The score of a hit of ``rule`` with this ``evidence`` (0-100, one decimal).
    ``topic_terms``: the texts of the rule's topic terms, when the caller keeps them."""
    if topic_terms is None:
        topic_terms = {t.text for t in rule.terms}
    # One pass: topic from context, the distinct context terms of headline and body,
    # where the topic stands, the weakest entry (a 200-rule set grades ~6 lists an item).
    topic: list[Evidence] = []
    context: list[Evidence] = []
    title_terms: set[str] = set()
    body_terms: set[str] = set()
    topic_in_title = topic_in_body = False
    first_topic: int | None = None
    weakest = 100.0
    for e in evidence:
        if e.term in topic_terms:
            topic.append(e)
            if e.field == "title":
                topic_in_title = True
            else:
                topic_in_body = True
            if first_topic is None or e.start < first_topic:
                first_topic = e.start
        else:
            context.append(e)
            (title_terms if e.field == "title" else body_terms).add(e.term)
        if e.score < weakest:
            weakest = e.score
    if not topic:  # cannot happen for a hit; the weakest honest answer
        return 0.0
    w = WEIGHTS
    score = w["base"]
    if topic_in_title:
        score += w["topic_in_title"]
        if topic_in_body:
            score += w["topic_in_body"]
    elif first_topic is not None and first_topic > w["deep_chars"]:
        score += w["deep"]
    # Headline and body are counted apart: a headline's terms say what the story
    # is, the body's only back it, so each has its own cap.
    in_title = len(title_terms)
    if in_title:
        score += w["context_in_title"] + min(w["title_more_max"],
                                             w["title_more"] * (in_title - 1))
    score += min(w["body_max"], w["body_context"] * len(body_terms))
    score += w["exact"] if weakest >= 100 else -(100 - weakest) / 2
    # The closest topic-context pair of one field (characters between, 0 when they touch
    # or overlap; a plain loop: a 200-rule set grades ~10 hits an item).
    gap: int | None = None
    for t in topic:
        for c in context:
            if t.field == c.field:
                g = (c.start - t.end) if c.start > t.start else (t.start - c.end)
                if gap is None or g < gap:
                    gap = g if g > 0 else 0
    if gap is not None and gap <= w["near_chars"]:
        score += w["near"]
    elif gap is not None and gap <= w["close_chars"]:
        score += w["close"]
    return round(max(0.0, min(100.0, score)), 1)
