"""Day one for ops: secrets are read only to send, ``check`` refuses what would
crash-loop the service and warns of desks that can send nothing."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import feed_doc
from procenv import cli_env
from waiting import wait_until

from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.rules import shipped_rules_dir

UNSET = ("NM_OPS_SLACK", "NM_OPS_SMTP")


def write(tmp_path: Path, desks: str, *, feed: str = "feed.xml",
          storage: str = "sqlite:///state/monitor.db") -> Path:
    """A configuration of one local feed (entry 3 a CPC story) and the given desks."""
    (tmp_path / "feed.xml").write_bytes(feed_doc(1, 4))
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{storage}"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
                      f'[[feeds]]\nurl = "{feed}"\n{desks}')
    return config


# Lines 10, 17 and 19: the secrets.
SECRET_DESKS = ('[smtp]\nhost = "127.0.0.1"\nport = 2525\npassword = "env:NM_OPS_SMTP"\n'
                '[[desks]]\nname = "energy"\nemail = ["desk@example.org"]\n'
                '[[desks]]\nname = "grain"\nalert_min_severity = "low"\n'
                'slack_webhook = "env:NM_OPS_SLACK"\nwebhook_url = "https://hooks.example/x"\n'
                'webhook_secret = "file:secrets/webhook"\n')


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return write(tmp_path, SECRET_DESKS)


def test_loading_checks_a_secrets_form_but_reads_none(unset: Path) -> None:
    settings = load_settings(unset)
    assert [(u.key, u.line, str(u.secret)) for u in settings.secrets] == [
        ("smtp.password", 10, "env:NM_OPS_SMTP"),
        ("desks.grain.slack_webhook", 17, "env:NM_OPS_SLACK"),
        ("desks.grain.webhook_secret", 19, "file:secrets/webhook"),
    ]


@pytest.mark.parametrize("command", [
    ["status"], ["hits"], ["feeds", "list"], ["deliveries", "list"], ["silence", "list"],
    ["rules", "test", "cpc-disruption", "CPC halts loadings at Novorossiysk"],
    ["match", "items.jsonl"], pytest.param(["poll", "-q"], marks=pytest.mark.slow),
])
def test_the_commands_that_look_run_without_the_secrets(
        unset: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    item = {"id": "a", "title": "CPC", "summary": ""}
    (unset.parent / "items.jsonl").write_text(json.dumps(item) + "\n")
    assert main(["--config", str(unset), *command]) == 0, capsys.readouterr().err
    assert "is not set" not in capsys.readouterr().err


def test_check_names_each_secret_it_cannot_read(unset: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(unset), "check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{unset}:10: smtp.password: environment variable NM_OPS_SMTP is not set",
        f"{unset}:17: desks.grain.slack_webhook: environment variable NM_OPS_SLACK is not set",
        f"{unset}:19: desks.grain.webhook_secret: secret file "
        f"{unset.parent / 'secrets' / 'webhook'} does not exist",
    ]


def test_check_passes_once_the_secrets_are_there(unset: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NM_OPS_SMTP", "x")
    monkeypatch.setenv("NM_OPS_SLACK", "https://hooks.example/s")
    (unset.parent / "secrets").mkdir()
    (unset.parent / "secrets" / "webhook").write_text("k")
    assert main(["--config", str(unset), "check"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("ok:") and out.err == ""


@pytest.mark.slow  # the poll forks its fetch child
def test_a_missing_secret_fails_the_send_plainly(unset: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(unset), "poll", "-q"]) == 0
    main(["--config", str(unset), "digest", "--desk", "grain"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "environment variable NM_OPS_SLACK is not set" in err
    assert main(["--config", str(unset), "deliveries", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows if isinstance(rows, list) else rows["deliveries"]
    errors = {r["channel"]: r["last_error"] for r in rows}
    assert "environment variable NM_OPS_SLACK is not set" in errors["slack"]


def test_check_warns_of_a_desk_with_no_channel(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, '[[desks]]\nname = "energy"\nrules = ["*"]\n'
                             '[[desks]]\nname = "grain"\nwebhook_url = "https://h.example/x"\n')
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"{config}:7: warning: desks.energy: no channel "
                                    "configured: its hits are stored, never sent"]
    assert out.out.startswith("ok:")


def test_a_missing_local_feed_fails_check_not_the_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "", feed="gone.xml")
    assert load_settings(config).feeds[0].url == str(tmp_path / "gone.xml")
    assert main(["--config", str(config), "check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{config}:6: feeds[0].url: local feed file {tmp_path / 'gone.xml'} does not exist"]
    config = write(tmp_path, "", feed=f"file://{tmp_path}/gone.xml")
    assert main(["--config", str(config), "check"]) == 1
    assert "feeds[0].url: local feed file" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["poll", "-q"], ["run"], ["status"],
                                     ["rules", "test", "cpc-disruption", "CPC"]])
def test_an_unsupported_store_is_one_line(tmp_path: Path, command: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "", storage="mysql://news:hunter2@db.example/news")
    assert main(["--config", str(config), *command]) == 1
    [line] = capsys.readouterr().err.splitlines()  # run logs it, with a time and a level
    assert line.endswith(
        f"{config}:2: storage.url: 'mysql://news:***@db.example/news' is not a SQLite or "
        "PostgreSQL URL (sqlite:///PATH, postgresql://USER@HOST/DB)")


@pytest.mark.skipif(importlib.util.find_spec("psycopg2") is not None,
                    reason="psycopg2 is installed here")
def test_a_missing_driver_is_named(tmp_path: Path) -> None:
    config = write(tmp_path, "", storage="postgresql+psycopg2://db.example/news")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert [str(p) for p in err.value.problems] == [
        f"{config}:2: storage.url: postgresql+psycopg2:// needs the Python package psycopg2, "
        "which is not installed"]


@pytest.mark.slow
def test_the_daemon_starts_without_secrets_and_says_so(tmp_path: Path) -> None:
    config = write(tmp_path, SECRET_DESKS.replace('[[desks]]\nname = "energy"\n'
                                                  'email = ["desk@example.org"]\n',
                                                  '[[desks]]\nname = "energy"\n'))
    config.write_text(config.read_text() + '[poll]\ninterval = "1h"\n')
    log = tmp_path / "daemon.log"
    env = cli_env(*UNSET)
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config),
                                 "run", "--tick", "0.5"], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env, cwd=tmp_path)
    try:
        def failed_send() -> bool:
            assert proc.poll() is None, log.read_text()
            done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                                   "deliveries", "list", "--format", "json"],
                                  capture_output=True, text=True, env=env, timeout=60)
            return "NM_OPS_SLACK is not set" in done.stdout

        wait_until(failed_send, "the alert's failed send", 30, detail=log.read_text)
        text = log.read_text()
        for warning in (
                f"{config}:10: smtp.password: environment variable NM_OPS_SMTP is not set; "
                "the deliveries that need it fail until then",
                f"{config}:11: desks.energy: no channel configured: its hits are stored, "
                "never sent"):
            assert warning in text
        assert text.count("NM_OPS_SLACK is not set; the deliveries") == 1
        assert "Traceback" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
