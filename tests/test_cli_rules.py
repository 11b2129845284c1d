"""`match`, `rules test|eval|backtest` and `hits`, through the real command line."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.evaluate import backtest
from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules, shipped_rules_dir

ITEMS = [
    {"id": "a", "title": "CPC halts loadings at Novorossiysk after a storm damages a mooring",
     "summary": "", "labels": ["cpc-disruption"]},
    {"id": "b", "title": "Bitcoin (BTC) tops $100,000", "summary": "Crypto markets rallied.",
     "labels": []},
    {"id": "c", "title": "КТК приостановил отгрузку нефти после атаки беспилотников",
     "summary": "Каспийский трубопроводный консорциум сообщил о повреждении ВПУ.",
     "labels": ["cpc-disruption"]},
    {"id": "d", "title": "Communist Party of China (CPC) opens its plenum", "summary": "",
     "labels": ["cpc-disruption"]},  # a wrong label: shows up as a false negative
]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    shutil.copytree(shipped_rules_dir(), tmp_path / "rules")
    path = tmp_path / "monitor.toml"
    path.write_text('[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "rules"\n')
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    return path


def test_match_prints_one_json_hit_per_item_and_rule(config: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "match", str(config.parent / "items.jsonl")]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(h["id"], h["rule"]) for h in hits] == [("a", "cpc-disruption"),
                                                    ("c", "cpc-disruption")]
    first = hits[0]
    assert 0 < first["score"] <= 100
    ev = first["evidence"][0]
    assert set(ev) == {"field", "term", "text", "start", "end", "score"}
    assert ITEMS[0][ev["field"]][ev["start"]:ev["end"]] == ev["text"]


def test_match_reads_stdin_and_reports_bad_lines(config: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(ITEMS[2]) + "\nnot json\n"))
    assert main(["--config", str(config), "match"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out.splitlines()[0])["id"] == "c"
    assert "<stdin>:2: not JSON" in out.err


def test_rules_test_shows_the_verdict_and_its_evidence(config: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    test = ["--config", str(config), "rules", "test", "cpc-disruption"]
    assert main([*test, ITEMS[0]["title"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MATCH cpc-disruption") and "title[" in out
    assert main([*test, ITEMS[3]["title"]]) == 3
    assert capsys.readouterr().out.startswith("no match")
    assert main(["--config", str(config), "rules", "test", "no-such-rule", "x"]) == 1


def test_rules_test_explains_a_hit_term_by_term(config: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "rules", "test", "cpc-disruption",
                 "CPC halts loadings after storm"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "MATCH cpc-disruption (high) score 87.0",
        "  title[0:3] 'CPC' ~ term 'CPC' (100.0)",
        "  title[4:9] 'halts' ~ term 'halt*' (100.0)",
        "  title[10:18] 'loadings' ~ term 'loading*' (100.0)",
        "  title[25:30] 'storm' ~ term 'storm*' (100.0)",
        "  require disruption: met by 'halts' (title[4:9]), 'storm' (title[25:30])"]


@pytest.mark.parametrize(("rule", "title", "summary", "expected"), [
    ("cpc-disruption", "Bitcoin miners in Kazakhstan", "", [
        "  topic: no term found (Caspian Pipeline Consortium, Caspian pipeline, Caspian "
        "consortium, Каспийск* консорциум*, Каспийский трубопроводный консорциум, Каспий "
        "құбыр консорциумы, … 28 terms)",
        "  require disruption: nothing found (halt*, suspend*, suspension, stop*, shut*, "
        "disrupt*, … 132 terms)"]),
    ("cpc-disruption", "Caspian Pipeline Consortium reports record exports", "", [
        "  topic: title[0:27] 'Caspian Pipeline Consortium' ~ term 'Caspian Pipeline "
        "Consortium' (100.0)",
        "  topic: title[0:16] 'Caspian Pipeline' ~ term 'Caspian pipeline' (100.0)",
        "  require disruption: nothing found (halt*, suspend*, suspension, stop*, shut*, "
        "disrupt*, … 132 terms)"]),
    ("cpc-disruption", "CPC plenum opens in Beijing", "", [
        "  topic: title[0:3] 'CPC' ~ term 'CPC' (100.0) does not count: none of its near "
        "terms (oil, crude, pipeline*, terminal*, tanker*, loading*, … 46 terms) anywhere "
        "in the item",
        "  require disruption: nothing found (halt*, suspend*, suspension, stop*, shut*, "
        "disrupt*, … 132 terms)"]),
    ("cpc-disruption", "Trans-Caspian pipeline halted after storm", "", [
        "  topic: title[6:22] 'Caspian pipeline' ~ term 'Caspian pipeline' (100.0)",
        "  exclude: title[0:13] 'Trans-Caspian' ~ term 'trans Caspian' (100.0) cancels "
        "'Caspian pipeline' (title[6:22]) (within 1 word)",
        "  topic: every topic term found is excluded",
        "  require disruption: met by 'halted' (title[23:29]), 'storm' (title[36:41])"]),
    ("eaeu-grain-ban", "Kazakhstan restricts wheet exports", "", [
        "  topic: no term found (grain*, wheat, barley, maize, corn, rye, … 37 terms)",
        "  topic: 'wheet' (title[21:26]) is spelt too unlike 'wheat' of term 'wheat' (80.0, "
        "below fuzzy 85)",
        "  require restriction: found 'restricts' (title[11:20]) but no topic term to be near",
        "  require EAEU member or body: met by 'Kazakhstan' (title[0:10])"]),
    ("eaeu-grain-ban", "Kazakhstan wheat harvest", "Many words later, after many, many words "
     "about the harvest, the weather, the farms, the prices and the markets, a ban", [
         "  topic: title[11:16] 'wheat' ~ term 'wheat' (100.0)",
         "  require restriction: 'ban' (summary[114:117]) not within 15 words of a topic term",
         "  require EAEU member or body: met by 'Kazakhstan' (title[0:10])"]),
])
def test_rules_test_explains_a_miss_term_by_term(
        config: Path, capsys: pytest.CaptureFixture[str], rule: str, title: str, summary: str,
        expected: list[str]) -> None:
    assert main(["--config", str(config), "rules", "test", rule, title,
                 "--summary", summary]) == 3
    assert capsys.readouterr().out.splitlines() == [
        f"no match: {rule} does not match this text", *expected]


def test_explain_gives_the_verdict_of_match() -> None:
    matcher = Matcher(load_rules(shipped_rules_dir()))
    texts = [(i["title"], i["summary"]) for i in ITEMS] + [
        ("Trans-Caspian pipeline halted after storm", ""), ("CPC plenum opens", ""),
        ("Kazakhstan bans wheat exports", "The EU bans grain imports"), ("", ""),
        ("Kazakhstan restricts wheet exports", ""), ("Kaspean Pipeline Konsorcium halts", "")]
    for title, summary in texts:
        hits = {m.rule_id: m for m in matcher.match(title, summary)}
        for rule_id in matcher.rules.ids:
            assert matcher.explain(rule_id, title, summary).match == hits.get(rule_id)
    with pytest.raises(KeyError):
        matcher.explain("nosuch", "x", "")


def test_rules_eval_reports_precision_recall_and_errors(config: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "rules", "eval",
                 str(config.parent / "items.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "d" in out and "False negatives (1)" in out
    row = next(line for line in out.splitlines() if line.startswith("cpc-disruption"))
    assert "1.000 0.667" in row  # precision 2/2, recall 2/3
    assert out.rstrip().splitlines()[-1].startswith("macro average")


@pytest.mark.slow
def test_backtest_shows_what_an_edited_rule_would_catch(config: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    feed = config.parent / "feed.xml"
    entries = "".join(f"<item><title>{i['title']}</title><guid>{i['id']}</guid>"
                      f"<description>{i['summary']}</description></item>" for i in ITEMS)
    feed.write_text(f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                    f"<title>T</title>{entries}</channel></rss>")
    config.write_text(config.read_text() + f'[[feeds]]\nurl = "{feed}"\n')
    assert main(["--config", str(config), "poll"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "rules", "backtest", "cpc-disruption"]) == 0
    out = capsys.readouterr().out
    assert "cpc-disruption: 2 of 4 stored items would match" in out and "0 not caught" in out
    # An edit that drops the Russian names: the backtest shows what it would lose.
    edited = config.parent / "edited.yaml"
    text = (config.parent / "rules" / "cpc-disruption.yaml").read_text()
    edited.write_text("\n".join(line for line in text.splitlines()
                                if "КТК" not in line and "Каспийск" not in line) + "\n")
    assert main(["--config", str(config), "rules", "backtest", str(edited),
                 "--since", "2d"]) == 0
    out = capsys.readouterr().out
    assert "1 of 4 stored items would match" in out
    assert "1 caught by it that this version would drop" in out


def test_backtest_compares_a_rule_with_its_deployed_hits() -> None:
    rule = load_rules(shipped_rules_dir()).get("cpc-disruption")
    assert rule is not None
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    items = [{"guid": i["id"], "feed": "f", "title": i["title"], "summary": i["summary"],
              "published": t0 + timedelta(hours=n)} for n, i in enumerate(ITEMS)]
    # The deployed rule caught a and d; this one catches a and c.
    result = backtest(Matcher(RuleSet((rule,))), items, [("a", "f"), ("d", "f")])
    assert result.scanned == 4
    assert [(c.guid, c.new) for c in result.caught] == [("c", True), ("a", False)]  # newest first
    assert (result.new, result.lost) == ({("c", "f")}, {("d", "f")})
    terms = result.caught[1].terms
    assert terms == sorted(set(terms)) and "CPC" in terms


@pytest.mark.slow
def test_hits_lists_stored_hits_as_jsonl(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = config.parent / "feed.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                    f"<item><title>{ITEMS[0]['title']}</title><guid>g</guid>"
                    "<link>https://x.example/1</link></item></channel></rss>")
    config.write_text(config.read_text() + f'[[feeds]]\nurl = "{feed}"\n')
    assert main(["--config", str(config), "poll"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "hits", "--format", "jsonl", "--since", "1d",
                 "--rule", "cpc-disruption"]) == 0
    (hit,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"rule", "score", "guid", "title", "link", "feed", "published",
            "matched_at"} <= set(hit)
    assert hit["guid"] == "g" and hit["feed"] == str(feed)
    assert hit["matched_at"].endswith("Z") and hit["published"].endswith("Z")
    assert main(["--config", str(config), "hits", "--since", "2099-01-01"]) == 0


@pytest.mark.slow
def test_an_entry_republished_under_a_new_id_is_not_a_new_hit(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = config.parent / "feed.xml"

    def write(guid: str) -> None:
        feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                        f"<item><title>{ITEMS[0]['title']}</title><guid>{guid}</guid>"
                        "<description>Loadings stopped.</description></item>"
                        "</channel></rss>")

    write("first-id")
    config.write_text(config.read_text() + f'[[feeds]]\nurl = "{feed}"\n')
    assert main(["--config", str(config), "poll"]) == 0
    write("second-id")  # the outlet republished the same story under a new id
    assert main(["--config", str(config), "poll"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("1 new items, 1 new hits")
    assert out[1].endswith("1 new items, 0 new hits")
