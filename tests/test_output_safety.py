"""Feed text on a terminal carries no control characters or ANSI escapes, and
secrets never show in `status`, `check`, logs or errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.rules import shipped_rules_dir
from monitor.store import Store

HOSTILE = "CPC halt \x1b[2J\x1b[31mRED\x1b]0;owned\x07 \x9b31m\r\rfake line\x00\x08"
SECRET = "xoxb-very-secret-token-9d3f"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NM_TEST_SLACK", f"https://hooks.slack.example/services/{SECRET}")
    monkeypatch.setenv("NM_TEST_SMTP_PASSWORD", SECRET)
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 1\npassword = "env:NM_TEST_SMTP_PASSWORD"\n'
        '[[desks]]\nname = "energy"\nslack_webhook = "env:NM_TEST_SLACK"\n'
        'email = ["desk@example.org"]\n'
        f'[[feeds]]\nurl = "https://hostile.example/rss"\nname = "{HOSTILE[:9]}\\u001b[5m"\n')
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.sync_feeds([("https://hostile.example/rss", "x\x1b[5mblink")])
    now = datetime.now(UTC)
    store.register_desks(["energy"], now - timedelta(hours=1))
    item = Item("https://hostile.example/rss", "g1", HOSTILE, HOSTILE, None, now, "en", "fp")
    store.commit_poll(FeedState("https://hostile.example/rss", error=HOSTILE),
                      [NewItem(item, (Match("cpc-disruption", 90.0,
                                            (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),))],
                      {"cpc-disruption": ("v", Severity.HIGH)}, now)
    store.close()
    return path


def _clean(text: str) -> None:
    for bad in ("\x1b", "\x9b", "\x07", "\x00", "\x08", "\r"):
        assert bad not in text, repr(bad)


@pytest.mark.parametrize("args", [["hits"], ["status"], ["feeds", "list"],
                                  ["rules", "test", "cpc-disruption", HOSTILE]])
def test_terminal_output_is_clean(config: Path, args: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    # `rules test` exits 3 on a miss (this text misses: "CPC" without oil words).
    assert main(["--config", str(config), *args]) == (3 if args[0] == "rules" else 0)
    out = capsys.readouterr()
    _clean(out.out + out.err)
    assert SECRET not in out.out + out.err


def test_status_json_and_check_never_show_secrets(config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "status", "--format", "json"]) == 0
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    json.loads(out.out.split("\nok:")[0])  # the JSON document is valid


def test_failed_deliveries_never_show_secrets(config: Path, caplog: pytest.LogCaptureFixture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Slack's host does not resolve and the SMTP port is closed: both fail.
    assert main(["--config", str(config), "digest"]) == 1
    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr()
    assert "retrying" in out.out
    assert SECRET not in out.out + out.err + caplog.text


def test_web_pages_are_clean_and_escaped(config: Path) -> None:
    """The same hostile store through the web view: no control character, no markup."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from webview import serving

    with serving(config) as web:
        # (the API's JSON is data, as `hits --format jsonl` is: given as stored)
        for path in ("/", "/hits/1", "/feeds", "/rules/cpc-disruption", "/?q=CPC"):
            got = web.get(path)
            assert got.status == 200, path
            _clean(got.body)
            assert SECRET not in got.body
