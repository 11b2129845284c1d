"""``[log] format = "json"``: one JSON object a line on stderr, for log shippers."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, Status, rss
from procenv import cli_env

from monitor import log as logsetup
from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.rules import shipped_rules_dir

_ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
             ) -> Iterator[pytest.CaptureFixture[str]]:
    """stderr as the handler set up in the test writes it (capsys's stream)."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    level = root.level
    yield capsys
    for handler in list(root.handlers):
        if isinstance(handler, logsetup._Handler):
            root.removeHandler(handler)
    root.setLevel(level)


def _lines(captured: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.readouterr().err.splitlines()]


def test_a_record_is_one_json_line_with_its_extra_fields(
        captured: pytest.CaptureFixture[str]) -> None:
    logsetup.setup("info", "json")
    log = logging.getLogger("monitor.deliver")
    log.info("sent %s\nto %s", "digest", "desk", extra={
        "desk": "energy", "channel": "slack", "delivery": 7, "level": "not mine",
        "when": object()})
    log.debug("below the level")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = _lines(captured)
    assert list(first)[:4] == ["time", "level", "logger", "message"]
    assert first["level"] == "info" and first["logger"] == "monitor.deliver"
    assert first["message"] == "sent digest\nto desk"  # one line on the wire all the same
    assert (first["desk"], first["channel"], first["delivery"]) == ("energy", "slack", 7)
    assert isinstance(first["when"], str)  # not JSON: its text
    assert isinstance(first["time"], str) and re.match(_ISO_Z, first["time"])
    assert second["level"] == "error" and "ValueError: boom" in str(second["exception"])


def test_text_stays_the_default(captured: pytest.CaptureFixture[str]) -> None:
    logsetup.setup("info")
    logging.getLogger("monitor.x").warning("plain")
    assert captured.readouterr().err.endswith(" WARNING monitor.x: plain\n")


def test_the_key_is_declared(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    base = f'[storage]\nurl = "sqlite:///m.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
    config.write_text(base)
    assert load_settings(config).log_format == "text"
    config.write_text(base + '[log]\nformat = "json"\n')
    assert load_settings(config).log_format == "json"
    config.write_text(base + '[log]\nformat = "xml"\n')
    with pytest.raises(ConfigError, match="'xml' is not one of text, json"):
        load_settings(config)


@pytest.mark.slow
def test_poll_logs_json_lines_on_stderr(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/ok.xml"] = Feed(rss("Wire", 2))
    feed_server.routes["/broken.xml"] = Status(500)
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/m.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        '[log]\nformat = "json"\nlevel = "debug"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/ok.xml")}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/broken.xml")}"\n')
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll",
                           "-v"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=cli_env("JOURNAL_STREAM"))
    assert "1 ok, 1 failed" in done.stdout, done.stderr
    # poll -v's own report lines ("ok   URL", "FAIL URL") are output, not log records;
    # every other line is one JSON object
    lines = [json.loads(line) for line in done.stderr.splitlines()
             if not line.startswith(("ok ", "FAIL "))]
    assert lines and all({"time", "level", "logger", "message"} <= set(d) for d in lines)
    warning = next(d for d in lines if d["level"] == "warning")
    assert warning["logger"] == "monitor.pipeline"
    assert "/broken.xml" in str(warning["message"]) and "500" in str(warning["message"])


def test_under_journald_the_priority_prefix_stays_in_front() -> None:
    record = logging.LogRecord("monitor.pipeline", logging.WARNING, __file__, 1,
                               "feed %s failing", ("x",), None)
    line = logsetup._JournalJsonFormatter().format(record)
    assert line.startswith("<4>{")
    assert json.loads(line[3:])["message"] == "feed x failing"
