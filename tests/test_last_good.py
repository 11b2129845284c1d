"""The last good configuration and rules survive a restart (monitor.lastgood): the copy
is written whole, resolves paths as the original did, and a daemon started on a
broken file runs on it until a reload takes the fixed files; with no copy the
start still fails. In process (the copy, the daemon's load and reload paths), then
on the real daemon (slow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemons import Daemon as DaemonProcess
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from servers import free_port

from monitor import lastgood
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.errors import RuleFileError
from monitor.rules import load_rules, shipped_rules_dir
from monitor.settings import config_path
from monitor.status import running_daemons
from monitor.store import Store

# Every relative path a configuration can hold: the store, rules, templates, a local feed.
CONFIG = ('[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
          '[templates]\ndir = "templates"\n[[feeds]]\nurl = "feeds/local.xml"\n'
          '[[desks]]\nname = "energy"\nrules = ["cpc-disruption"]\n')
BREAK_RULE = ("severity:", "severity: urgent\nseverity_:")


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A configuration folder: monitor.toml, its rules, templates and a local feed."""
    folder = tmp_path / "etc"
    shutil.copytree(shipped_rules_dir(), folder / "rules")
    (folder / "templates").mkdir()
    (folder / "feeds").mkdir()
    (folder / "feeds" / "local.xml").write_bytes(feed_doc(1, 2))
    (folder / "monitor.toml").write_text(CONFIG)
    return folder


def _saved(etc: Path, where: Path) -> lastgood.Copy:
    settings = load_settings(etc / "monitor.toml")
    copy = lastgood.save(where, settings, load_rules(settings.rules_dir))
    assert copy is not None
    return copy


def test_a_copy_loads_as_the_original_did(etc: Path, tmp_path: Path) -> None:
    where = tmp_path / "var" / "last-good"
    before = load_settings(etc / "monitor.toml")
    rules_before = load_rules(before.rules_dir)
    kept = _saved(etc, where)
    # Both files broken: the copy still gives what the originals gave.
    (etc / "monitor.toml").write_text(CONFIG.replace("[[desks]]", "[[desks]\n"))
    cpc = etc / "rules" / "cpc-disruption.yaml"
    cpc.write_text(cpc.read_text().replace(*BREAK_RULE))
    copy = lastgood.find(where, etc / "monitor.toml")
    assert copy is not None and copy.digest == kept.digest
    assert copy.saved_text == kept.saved_text
    settings, rules = lastgood.load(copy, str(etc / "monitor.toml"))
    assert settings == before  # every relative path as the original resolved it
    assert settings.storage_url == f"sqlite:///{etc / 'state' / 'monitor.db'}"
    assert settings.templates_dir == etc / "templates"
    assert settings.feeds[0].url == str(etc / "feeds" / "local.xml")
    assert rules == rules_before  # the same versions, under the original files' names
    assert all(r.path.startswith(str(etc / "rules")) for r in rules)
    # Private, as a configuration with an inline secret would want.
    assert {oct(p.stat().st_mode & 0o777) for p in copy.folder.rglob("*") if p.is_file()} \
        == {"0o600"}


def test_the_same_files_are_not_copied_again(etc: Path, tmp_path: Path) -> None:
    where = tmp_path / "last-good"
    first = _saved(etc, where)
    assert _saved(etc, where) == first
    # An edit is a new copy; the old folder goes once it is no longer young.
    old = datetime.now().timestamp() - 3600
    os.utime(first.folder, (old, old))
    (etc / "rules" / "btc-diversion.yaml").unlink()
    second = _saved(etc, where)
    assert second.folder != first.folder and not first.folder.exists()
    assert sorted(p.name for p in second.rules.iterdir()) == [  # the rule files, no README
        "cpc-disruption.yaml", "eaeu-grain-ban.yaml", "sanctioned-transit.yaml"]
    assert [p.name for p in where.iterdir() if p.name.startswith("copy-")] == [
        second.folder.name]


def test_a_file_changed_since_it_was_loaded_is_not_kept(etc: Path, tmp_path: Path) -> None:
    settings = load_settings(etc / "monitor.toml")
    rules = load_rules(settings.rules_dir)
    cpc = etc / "rules" / "cpc-disruption.yaml"
    cpc.write_text(cpc.read_text().replace(*BREAK_RULE))  # saved between load and copy
    where = tmp_path / "last-good"
    assert lastgood.save(where, settings, rules) is None
    cpc.write_text(cpc.read_text().replace(*reversed(BREAK_RULE)))
    (etc / "monitor.toml").write_text(CONFIG + '[poll]\ninterval = "zz"\n')
    assert lastgood.save(where, settings, rules) is None
    assert lastgood.find(where, etc / "monitor.toml") is None


def test_a_failed_write_leaves_the_last_copy(etc: Path, tmp_path: Path) -> None:
    where = tmp_path / "last-good"
    first = _saved(etc, where)
    (etc / "rules" / "btc-diversion.yaml").unlink()
    (where / f".current.json.{os.getpid()}.tmp").mkdir()  # the manifest cannot be written
    settings = load_settings(etc / "monitor.toml")
    with pytest.raises(OSError):
        lastgood.save(where, settings, load_rules(settings.rules_dir))
    copy = lastgood.find(where, etc / "monitor.toml")
    assert copy == first
    assert len(lastgood.load(copy, str(etc / "monitor.toml"))[1]) == 4
    assert [p.name for p in where.iterdir() if p.name.startswith(("copy-", ".tmp-"))] == [
        first.folder.name]


def test_a_copy_of_another_configuration_is_not_used(etc: Path, tmp_path: Path) -> None:
    where = tmp_path / "last-good"
    _saved(etc, where)
    assert lastgood.find(where, tmp_path / "other.toml") is None
    assert lastgood.find(where, None) is None
    assert lastgood.find(tmp_path / "nothing-here", etc / "monitor.toml") is None
    (where / "current.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"current\.json"):
        lastgood.find(where, etc / "monitor.toml")


def test_where_the_copy_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "etc" / "monitor.toml"
    assert lastgood.folder(config, {}) == tmp_path / "etc" / "state" / "last-good"
    assert lastgood.folder(config, {"STATE_DIRECTORY": f"{tmp_path}/var:/elsewhere"}) == \
        tmp_path / "var" / "last-good"
    monkeypatch.chdir(tmp_path)
    assert lastgood.folder(None, {}) == tmp_path / "state" / "last-good"
    assert lastgood.folder(None, {"NEWS_MONITOR_CONFIG": str(config)}) == \
        tmp_path / "etc" / "state" / "last-good"
    assert config_path(None, {}) is None


# -- the daemon's load and reload paths, in process --------------------------------------


@pytest.fixture
def started(etc: Path) -> Iterator[Path]:
    """A daemon that started cleanly on ``etc`` (its copy kept), then stopped."""
    d = Daemon(str(etc / "monitor.toml"))
    settings, rules = d._load()
    d.store = Store.open(settings.storage_url)
    d._apply(settings, rules)
    d._keep(settings, rules)
    d.store.close()
    yield etc


def test_restarted_on_a_broken_rule_file_the_daemon_runs_on_the_copy(
        started: Path, caplog: pytest.LogCaptureFixture) -> None:
    cpc = started / "rules" / "cpc-disruption.yaml"
    good = cpc.read_text()
    cpc.write_text(good.replace(*BREAK_RULE))
    d = Daemon(str(started / "monitor.toml"))
    with pytest.raises(RuleFileError) as e:
        d._load()
    fallback = d._last_good(e.value.problems)
    assert fallback is not None
    assert "running on the last good copy of the configuration and rules, of " in caplog.text
    settings, rules = fallback
    from apscheduler.schedulers.background import BackgroundScheduler

    d.scheduler = BackgroundScheduler(timezone=UTC)  # not started: a reload reschedules digests
    d.store = Store.open(settings.storage_url)
    try:
        d._apply(settings, rules)
        assert d.poller.matcher.match("CPC halts loadings at Novorossiysk after a storm", "")
        assert d.on_copy is not None
        assert [p for p in d.on_copy["problems"]  # type: ignore[union-attr]
                if re.match(rf"{re.escape(str(cpc))}:\d+:", p)]
        d._publish()
        [row] = running_daemons(d.store)
        assert row["last_good_copy"] == d.on_copy
        # Still broken: a reload is refused, the copy stays.
        assert d.reload(reason="rule files changed", rules_only=True) is False
        assert d.on_copy is not None
        cpc.write_text(good)
        assert d.reload(reason="rule files changed", rules_only=True) is True
        assert d.on_copy is None and d.last_reload is not None and d.last_reload["ok"]
        d._publish()
        assert running_daemons(d.store)[0]["last_good_copy"] is None
    finally:
        d.store.close()


def test_with_no_copy_a_broken_file_still_fails(etc: Path) -> None:
    (etc / "monitor.toml").write_text(CONFIG + '[poll]\ninterval = "zz"\n')
    d = Daemon(str(etc / "monitor.toml"))
    assert d.run() == 1
    assert not (etc / "state").exists()  # nothing written by a start that failed


# -- the real daemon ------------------------------------------------------------------------


def _scrape(port: int, name: str) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None
    m = re.search(rf"^{name} (\S+)$", text.decode(), re.M)
    return float(m.group(1)) if m else None


def _status_table(config: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "status"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stop(daemon: DaemonProcess) -> None:
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=20) == 0, daemon.stderr()


@pytest.fixture
def live(feed_server: FeedServer, tmp_path: Path) -> Iterator[tuple[FeedServer, Path, int]]:
    shutil.copytree(shipped_rules_dir(), tmp_path / "rules")
    feed_server.routes["/a.xml"] = Feed(feed_doc(1, 2))
    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
        '[poll]\ninterval = "1s"\ntimeout = "5s"\n'
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/a.xml")}"\n')
    yield feed_server, config, port


def _first_run(config: Path, env: dict[str, str], where: Path) -> None:
    """A clean start that keeps its copy, then a stop."""
    daemon = DaemonProcess(config, env, log="first.log")
    try:
        daemon.wait_for("the copy", lambda: (where / "current.json").is_file())
        # A poll cut by the stop would be a failure, and the feed would back off.
        daemon.wait_for("a whole poll", lambda: daemon.status()["feeds"][0]["last_status"])
    finally:
        _stop(daemon)


def _on_the_copy(daemon: DaemonProcess, config: Path, env: dict[str, str], port: int,
                 broken: Path) -> None:
    """What a daemon running on its copy shows: log, status, metrics."""
    daemon.wait_for("the copy in use", lambda: "running on the last good copy" in
                    daemon.stderr())
    log = daemon.stderr()
    assert re.search(rf" ERROR monitor\.daemon: {re.escape(str(broken))}:\d+:", log), log
    assert re.search(r" ERROR monitor\.daemon: running on the last good copy of the "
                     r"configuration and rules, of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", log), log
    daemon.wait_for("the gauge at 0", lambda: _scrape(
        port, "news_monitor_config_last_reload_successful") == 0)
    daemon.wait_for("the status row", lambda: daemon.status()["daemons"])
    [row] = daemon.status()["daemons"]
    copy = row["last_good_copy"]
    assert copy is not None and copy["saved"].endswith("Z")
    assert any(p.startswith(f"{broken}:") for p in copy["problems"]), copy
    table = _status_table(config, env)
    assert f"config: last good copy of {copy['saved']} ({broken}:" in table, table


def _fixed(daemon: DaemonProcess, config: Path, env: dict[str, str], port: int) -> None:
    daemon.wait_for("the gauge at 1", lambda: _scrape(
        port, "news_monitor_config_last_reload_successful") == 1)
    daemon.wait_for("a clean status row",
                    lambda: daemon.status()["daemons"][0]["last_good_copy"] is None)
    assert "last good copy" not in _status_table(config, env)
    assert "no longer on the last good copy" in daemon.stderr()


@pytest.mark.slow
def test_a_restart_on_a_broken_rule_file_runs_on_the_last_good_copy(
        live: tuple[FeedServer, Path, int]) -> None:
    server, config, port = live
    env = cli_env("STATE_DIRECTORY", "JOURNAL_STREAM")
    where = config.parent / "state" / "last-good"
    _first_run(config, env, where)
    cpc = config.parent / "rules" / "cpc-disruption.yaml"
    good = cpc.read_text()
    cpc.write_text(good.replace(*BREAK_RULE))

    daemon = DaemonProcess(config, env)
    try:
        _on_the_copy(daemon, config, env, port, cpc)
        # It polls, and matches with the copy's rules.
        server.routes["/a.xml"] = Feed(feed_doc(1, 4))  # entry 3 is a CPC story
        daemon.wait_for("a hit by the copy's rule", lambda: daemon.stored_hits() == 1)
        assert daemon.hits()[0]["rule"] == "cpc-disruption"
        # Saving the fixed file is a reload (the rules folder is watched).
        cpc.write_text(good)
        _fixed(daemon, config, env, port)
    finally:
        if daemon.proc.poll() is None:
            _stop(daemon)


@pytest.mark.slow
def test_a_restart_on_a_broken_configuration_runs_on_the_last_good_copy(
        live: tuple[FeedServer, Path, int], tmp_path: Path) -> None:
    server, config, port = live
    env = cli_env("JOURNAL_STREAM")
    env["STATE_DIRECTORY"] = str(tmp_path / "var")  # as the unit gives it
    where = tmp_path / "var" / "last-good"
    _first_run(config, env, where)
    good = config.read_text()
    config.write_text(good.replace('interval = "1s"', 'interval = "1 parsec"'))

    daemon = DaemonProcess(config, env)
    try:
        _on_the_copy(daemon, config, env, port, config)
        polled = server.count("/a.xml")
        daemon.wait_for("a poll", lambda: server.count("/a.xml") > polled)
        # The copy's relative SQLite path is the original's: state/ beside monitor.toml.
        server.routes["/a.xml"] = Feed(feed_doc(1, 4))
        daemon.wait_for("the hit, in the original's store", lambda: daemon.stored_hits() == 1)
        # Still broken at a SIGHUP: refused, still on the copy.
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for("the rejected reload", lambda: "keeping the last good configuration "
                        "and rules" in daemon.stderr())
        assert daemon.status()["daemons"][0]["last_good_copy"] is not None
        saved = json.loads((where / "current.json").read_text())["saved"]
        config.write_text(good.replace('interval = "1s"', 'interval = "2s"'))
        daemon.proc.send_signal(signal.SIGHUP)
        _fixed(daemon, config, env, port)
        # The fixed files are the new copy.
        daemon.wait_for("the new copy", lambda: json.loads(
            (where / "current.json").read_text())["saved"] != saved)
        copy = lastgood.find(where, config)
        assert copy is not None and copy.config_file is not None
        assert copy.config_file.read_text() == config.read_text()
    finally:
        if daemon.proc.poll() is None:
            _stop(daemon)


@pytest.mark.slow
def test_a_first_start_on_a_broken_file_fails(live: tuple[FeedServer, Path, int]) -> None:
    _, config, _ = live
    cpc = config.parent / "rules" / "cpc-disruption.yaml"
    cpc.write_text(cpc.read_text().replace(*BREAK_RULE))
    daemon = DaemonProcess(config, cli_env("STATE_DIRECTORY", "JOURNAL_STREAM"))
    assert daemon.proc.wait(timeout=30) == 1
    assert re.search(rf"ERROR monitor\.daemon: {re.escape(str(cpc))}:\d+:", daemon.stderr())
    assert "last good copy" not in daemon.stderr()
    assert not (config.parent / "state" / "last-good").exists()


def test_an_old_copy_is_named_by_its_time(etc: Path, tmp_path: Path) -> None:
    settings = load_settings(etc / "monitor.toml")
    when = datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)
    copy = lastgood.save(tmp_path / "lg", settings, load_rules(settings.rules_dir), now=when)
    assert copy is not None and copy.saved_text == "2026-12-02T10:00:00Z"
    found = lastgood.find(tmp_path / "lg", etc / "monitor.toml")
    assert found is not None and found.saved == when.replace(microsecond=0)
    assert datetime.now(UTC) - found.saved > timedelta(0)


def test_status_on_a_broken_configuration_reads_with_the_copy(
        etc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    config = etc / "monitor.toml"
    broken = CONFIG + '[poll]\ninterval = "zz"\n'
    config.write_text(broken)
    assert main(["--config", str(config), "status"]) == 1  # no copy: the problem, exit 1
    assert capsys.readouterr().err.startswith(f"{config}:")
    config.write_text(CONFIG)
    copy = _saved(etc, etc / "state" / "last-good")
    config.write_text(broken)
    assert main(["--config", str(config), "status", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["feeds"][0]["url"] == str(etc / "feeds" / "local.xml")
    problem, note = err.splitlines()
    assert problem.startswith(f"{config}:") and "poll.interval" in problem
    assert f"the last good copy of {copy.saved_text}" in note
