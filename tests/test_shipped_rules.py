"""The four shipped rules: paired must-match / must-not-match cases, and dev.jsonl quality.

The cases in ``tests/data/rule_cases/`` were written for these tests. The
labelled corpus lives in ``../shared`` beside the checkout, read-only; the
tests that use it skip when it is absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import yaml

from monitor.evaluate import Report, evaluate, format_report
from monitor.match import Matcher
from monitor.models import Severity
from monitor.rules import load_rules
from monitor.settings import shipped_rules_dir

CASES = Path(__file__).parent / "data" / "rule_cases"
SHARED = Path(__file__).resolve().parents[2] / "shared"
DEV = SHARED / "corpus" / "dev.jsonl"
RULE_IDS = ("btc-diversion", "cpc-disruption", "eaeu-grain-ban", "sanctioned-transit")
TARGET = 0.95


@cache
def _matcher() -> Matcher:
    return Matcher(load_rules(shipped_rules_dir()))


def _cases(kind: str) -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(CASES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data[kind]:
            out.append((data["rule"], case["title"], case.get("summary", "")))
    return out


def test_the_four_rules_are_shipped_with_their_severities() -> None:
    rules = _matcher().rules
    assert rules.ids == RULE_IDS
    assert {r.id: r.severity for r in rules} == {
        "btc-diversion": Severity.MEDIUM, "cpc-disruption": Severity.HIGH,
        "eaeu-grain-ban": Severity.MEDIUM, "sanctioned-transit": Severity.HIGH}
    assert {p.stem for p in CASES.glob("*.yaml")} == set(RULE_IDS)


@pytest.mark.parametrize(("rule", "title", "summary"), _cases("match"))
def test_must_match(rule: str, title: str, summary: str) -> None:
    hits = {m.rule_id: m for m in _matcher().match(title, summary)}
    assert rule in hits
    assert hits[rule].evidence and 0 < hits[rule].score <= 100


@pytest.mark.parametrize(("rule", "title", "summary"), _cases("no_match"))
def test_must_not_match(rule: str, title: str, summary: str) -> None:
    hits = {m.rule_id: m for m in _matcher().match(title, summary)}
    assert rule not in hits, hits[rule].evidence


@cache
def _dev_report() -> Report:
    if not DEV.is_file():
        pytest.skip(f"{DEV} is not available")
    with DEV.open(encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    return evaluate(_matcher(), items)


@pytest.mark.parametrize("rule", RULE_IDS)
@pytest.mark.parametrize("lang", [None, "en", "ru", "kk"])
def test_dev_precision_and_recall(rule: str, lang: str | None) -> None:
    report = _dev_report()
    counts = report.rules[rule].overall if lang is None else report.rules[rule].by_lang[lang]
    where = f"{rule} ({lang or 'all'})"
    assert counts.tp + counts.fn > 0, f"{where}: no labelled item"
    assert counts.precision >= TARGET, f"{where}\n{format_report(report)}"
    assert counts.recall >= TARGET, f"{where}\n{format_report(report)}"


def test_report_format_ends_with_the_table() -> None:
    items = [
        {"id": "a", "title": "CPC halts loadings after storm", "summary": "", "lang": "en",
         "labels": ["cpc-disruption"]},
        {"id": "b", "title": "Kazakhstan bans wheat imports from Russia", "summary": "",
         "lang": "en", "labels": []},
        {"id": "c", "title": "Tengiz output steady", "summary": "", "lang": "ru",
         "labels": ["cpc-disruption"]},
    ]
    report = evaluate(_matcher(), items)
    cpc, grain = report.rules["cpc-disruption"].overall, report.rules["eaeu-grain-ban"].overall
    assert (cpc.tp, cpc.fp, cpc.fn) == (1, 0, 1)
    assert (grain.tp, grain.fp, grain.fn) == (0, 1, 0)
    assert [(m.rule_id, m.item_id) for m in report.false_positives] == [("eaeu-grain-ban", "b")]
    assert report.false_positives[0].evidence
    assert [(m.rule_id, m.item_id) for m in report.false_negatives] == [("cpc-disruption", "c")]
    assert report.rules["cpc-disruption"].by_lang["ru"].recall == 0.0
    lines = format_report(report).splitlines()
    assert lines[0] == "False positives (1):"
    table = lines[-(len(RULE_IDS) + 2):]
    assert table[0].startswith("rule ")
    assert [line.split()[0] for line in table[1:-1]] == list(RULE_IDS)
    assert table[-1].startswith("macro average")
    assert table[-1].split()[-3:] == [f"{report.macro_precision:.3f}",
                                      f"{report.macro_recall:.3f}", f"{report.macro_f1:.3f}"]
