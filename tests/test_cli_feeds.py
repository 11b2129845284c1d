"""`feeds list|add|import|export` and `check`, through the real command line."""

from __future__ import annotations

from pathlib import Path

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
