"""`feeds list|add|import|export` and `check`, through the real command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import load_settings
from monitor.opml import export_opml, import_opml
from monitor.rules import shipped_rules_dir

CONFIG = f"""\
# The desk's feeds. This comment must survive edits.
[rules]
dir = "{shipped_rules_dir()}"

[[feeds]]
url = "https://a.example/rss"   # keep me too
name = "A"
"""

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="Energy">
    <outline type="rss" text="B &amp; Co" xmlUrl="https://b.example/feed"/>
    <outline type="rss" text="A again" xmlUrl="https://a.example/rss"/>
  </outline>
  <outline type="rss" title="C" text="c" xmlUrl="https://c.example/atom"/>
</body></opml>"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG)
    return path


def test_add_keeps_comments_and_validates(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "feeds", "add", "https://new.example/rss",
                 "--name", "New", "--interval", "5m"]) == 0
    text = config.read_text()
    assert "This comment must survive edits." in text and "# keep me too" in text
    feeds = load_settings(config).feeds
    assert [(f.url, f.name, f.interval) for f in feeds][-1] == ("https://new.example/rss", "New",
                                                                300)
    # Adding it again changes nothing; a bad interval changes nothing either.
    assert main(["--config", str(config), "feeds", "add", "https://new.example/rss"]) == 0
    before = config.read_text()
    assert main(["--config", str(config), "feeds", "add", "https://x.example/rss",
                 "--interval", "soon"]) == 1
    assert config.read_text() == before
    assert '"soon" is not a duration' in capsys.readouterr().err


def test_import_and_export_opml(config: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "subs.opml").write_bytes(OPML)
    assert main(["--config", str(config), "feeds", "import", str(tmp_path / "subs.opml")]) == 0
    assert "added 2 feeds" in capsys.readouterr().out
    urls = [f.url for f in load_settings(config).feeds]
    assert urls == ["https://a.example/rss", "https://b.example/feed", "https://c.example/atom"]
    assert main(["--config", str(config), "feeds", "export"]) == 0
    exported = capsys.readouterr().out
    assert import_opml(exported.encode()) == [("https://a.example/rss", "A"),
                                              ("https://b.example/feed", "B & Co"),
                                              ("https://c.example/atom", "C")]


def test_add_on_the_embedded_default_writes_a_config(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    assert main(["feeds", "add", "https://new.example/rss"]) == 0
    feeds = load_settings(tmp_path / "monitor.toml").feeds
    assert len(feeds) == len(load_settings(None).feeds) and feeds[-1].url == \
        "https://new.example/rss"


def test_opml_refuses_entities_and_non_opml() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaa">]><opml><body/></opml>'
    with pytest.raises(ValueError, match="entities"):
        import_opml(bomb)
    with pytest.raises(ValueError, match="not OPML"):
        import_opml(b"<rss/>")
    with pytest.raises(ValueError, match="not OPML"):
        import_opml(b"not xml at all")
    assert import_opml(export_opml([("https://x.example/?a=1&b=<2>", 'Q "x"')]).encode()) == [
        ("https://x.example/?a=1&b=<2>", 'Q "x"')]


def test_check_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_UNSET", raising=False)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[rules]\ndir = "{shipped_rules_dir()}"\n[poll]\nconcurency = 3\n'
                      '[[desks]]\nname = "energy"\nrules = ["cpc-disruptoin"]\n'
                      'slack_webhook = "env:NM_UNSET"\n')
    assert main(["--config", str(config), "check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{config}:4: poll.concurency: unknown key (did you mean 'concurrency'?)",
        f"{config}:8: desks.energy.slack_webhook: environment variable NM_UNSET is not set",
    ]
    config.write_text(f'[rules]\ndir = "{shipped_rules_dir()}"\n'
                      '[[desks]]\nname = "energy"\nrules = ["cpc-disruptoin"]\n')
    assert main(["--config", str(config), "check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{config}:3: warning: desks.energy: no channel configured: its hits are stored, never "
        "sent",
        f"{config}:5: desks.energy.rules: unknown rule 'cpc-disruptoin' (did you mean "
        "'cpc-disruption'?)"]


def test_check_passes_on_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "monitor.toml"
    assert main(["--config", str(example), "check"]) == 0
    assert "3 feeds, 4 rules" in capsys.readouterr().out


# -- tables, exit codes and help -------------------------------------------------------------

LONG_TITLE = ("Kazakhstan diverts crude from the Caspian Pipeline Consortium to the BTC line "
              "as storms halt loadings near Novorossiysk for a third day")
LINK = "https://outlet.example/2026/01/05/kazakhstan-diverts-crude-from-the-cpc-to-btc"


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration whose store holds one hit with a long title, and a failing feed."""
    from datetime import UTC, datetime

    from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
    from monitor.store import Store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    feed = "https://outlet.example/rss"
    path = tmp_path / "monitor.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = '
                    f'"{shipped_rules_dir()}"\n[[feeds]]\nurl = "{feed}"\nname = "Outlet"\n')
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.sync_feeds([(feed, "Outlet")])
    at = datetime(2026, 1, 5, 9, 30, 15, tzinfo=UTC)
    item = Item(feed, "g1", LONG_TITLE, "", LINK, at, "en", "fp")
    error = ("https://outlet.example/rss: GET failed after 3 redirects via a proxy at "
             "10.0.0.1:3128 and a very long explanation: connection refused")
    store.commit_poll(FeedState(feed, error=error, last_status="connection"),
                      [NewItem(item, (Match("cpc-disruption", 90.0,
                                            (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),))],
                      {"cpc-disruption": ("v", Severity.HIGH)}, at)
    store.close()
    return path


@pytest.mark.parametrize("columns", ["80", "160", None])
def test_hits_table_fits_the_terminal_with_time_and_link(
        stored: Path, columns: str | None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:  # not a terminal (a pipe, capsys): a fixed 100
        monkeypatch.delenv("COLUMNS", raising=False)
    width = int(columns or 100)
    assert main(["--config", str(stored), "hits"]) == 0
    header, row, link = capsys.readouterr().out.splitlines()
    # The match time only on a wide terminal: the title keeps its room on a narrow one.
    assert header.split() == ["PUBLISHED", *(["MATCHED"] if width >= 120 else []), "RULE",
                              "SCORE", "FEED", "TITLE"]
    assert row.startswith("2026-01-05 09:30Z  ") and "cpc-disruption  90     Outlet  " in row
    assert link == f"  {LINK}"  # whole, clickable
    title = row[header.index("TITLE"):]
    assert len(row) <= width
    assert title.endswith("…") and LONG_TITLE.startswith(title[:-1])
    assert LONG_TITLE[len(title) - 1] == " "  # cut between words
    assert len(title) >= {"80": 20, "160": 80, None: 40}[columns]


def test_status_error_column_keeps_the_cause(stored: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["--config", str(stored), "status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("Outlet"))
    assert len(row) <= 100
    assert row.endswith(": connection refused")  # the cause, at the end
    error = row[row.index("https://outlet"):]
    assert "…" in error and len(error) >= 40  # where (its start) and why (its end)


def test_hits_for_an_unknown_rule_exits_1_naming_the_rules(
        stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(stored), "hits", "--rule", "cpc-disrupton"]) == 1
    assert capsys.readouterr().err.strip() == (
        "news-monitor: unknown rule 'cpc-disrupton' (did you mean 'cpc-disruption'? rules: "
        "btc-diversion, cpc-disruption, eaeu-grain-ban, sanctioned-transit)")
    assert main(["--config", str(stored), "hits", "--rule", "nosuch"]) == 1
    assert capsys.readouterr().err.strip() == (
        "news-monitor: unknown rule 'nosuch' (rules: btc-diversion, cpc-disruption, "
        "eaeu-grain-ban, sanctioned-transit)")
    # A known rule without hits is an empty answer, not a mistake.
    assert main(["--config", str(stored), "hits", "--rule", "btc-diversion"]) == 0


def test_match_reports_bad_lines_and_still_matches_the_good_ones(
        stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = stored.parent / "items.jsonl"
    good = {"id": "a", "title": "CPC halts loadings after storm", "summary": ""}
    items.write_text("\n".join([json.dumps(good), '{"id": "b", "headline": "x"}', "[1, 2]",
                                "{not json", json.dumps({**good, "title": 5}),
                                json.dumps({**good, "id": "c"})]) + "\n")
    assert main(["--config", str(stored), "match", str(items)]) == 1
    out = capsys.readouterr()
    assert [json.loads(line)["id"] for line in out.out.splitlines()] == ["a", "c"]
    assert out.err.splitlines() == [
        f"{items}:2: missing 'title', 'summary'",
        f"{items}:3: expected a JSON object, not an array",
        f"{items}:4: not JSON: Expecting property name enclosed in double quotes",
        f"{items}:5: 'title' must be a string",
        f"news-monitor: {items}: 4 of 6 lines skipped (expected JSON objects with id, title, "
        "summary)"]


def test_rules_eval_refuses_a_corpus_without_labels(
        stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = stored.parent / "corpus.jsonl"
    item = {"id": "a", "title": "CPC halts loadings after storm", "summary": "", "lang": "en"}
    corpus.write_text(json.dumps(item) + "\n" + json.dumps({**item, "id": "b"}) + "\n")
    assert main(["--config", str(stored), "rules", "eval", str(corpus)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == (
        f"news-monitor: {corpus}: no item has a 'labels' field (the rules it should hit, [] "
        "for none, as in dev.jsonl): nothing to score the rules against")
    corpus.write_text(json.dumps({**item, "labels": ["cpc-disruption"]}) + "\n"
                      + json.dumps({**item, "id": "b"}) + "\n")
    assert main(["--config", str(stored), "rules", "eval", str(corpus)]) == 0
    assert capsys.readouterr().err.strip() == (
        f"news-monitor: warning: {corpus}: 1 of 2 items have no 'labels' field; counted as "
        "hitting no rule")


def test_every_subcommand_describes_itself() -> None:
    import argparse

    from monitor.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, Any]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield f"{path} {name}", sub
                    yield from walk(sub, f"{path} {name}")

    commands = dict(walk(build_parser(), "news-monitor"))
    assert {"news-monitor rules test", "news-monitor deliveries retry"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description, name
        for action in sub._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name} {action.dest}"


def test_add_a_site_page_finds_its_feeds(config: Path, feed_server: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`feeds add https://outlet/` reads the page's <link rel="alternate"> feeds."""
    from feedserver import Feed, rss

    head = ('<link rel="stylesheet" href="/s.css">'
            '<link rel="alternate" type="application/rss+xml" title="All news" href="/rss">'
            '<link rel="alternate" type="application/atom+xml" href="atom.xml">'
            '<link rel="alternate" hreflang="kk" href="/kk/">')
    feed_server.routes["/"] = Feed(f"<!doctype html><html><head>{head}</head><body>Home"
                                   "</body></html>".encode(), content_type="text/html")
    feed_server.routes["/bare/"] = Feed(b"<!doctype html><html><body>no feed</body></html>",
                                        content_type="text/html")
    feed_server.routes["/feed/"] = Feed(rss())  # a feed at a page-like URL stays itself
    assert main(["--config", str(config), "feeds", "add", feed_server.url("/")]) == 0
    out = capsys.readouterr().out
    assert f"+ {feed_server.url('/rss')}  (All news)" in out
    assert f"  {feed_server.url('/atom.xml')}" in out
    urls = [f.url for f in load_settings(config).feeds]
    assert feed_server.url("/rss") in urls and feed_server.url("/atom.xml") not in urls
    assert main(["--config", str(config), "feeds", "add", "--all", feed_server.url("/")]) == 0
    assert feed_server.url("/atom.xml") in [f.url for f in load_settings(config).feeds]
    assert main(["--config", str(config), "feeds", "add", feed_server.url("/feed/")]) == 0
    assert feed_server.url("/feed/") in [f.url for f in load_settings(config).feeds]
    before = config.read_text()
    assert main(["--config", str(config), "feeds", "add", feed_server.url("/bare/")]) == 1
    assert "neither a feed nor a page that links to one" in capsys.readouterr().err
    assert config.read_text() == before
