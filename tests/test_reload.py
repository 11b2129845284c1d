"""On every operator mistake, a reload is refused with its `path:line` message and the
daemon keeps its last good configuration and rules (in process, no scheduler)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mistakes import BAD, EXPECTED, MISTAKES

from monitor.daemon import Daemon
from monitor.rules import shipped_rules_dir

GOOD_CONFIG = '[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "rules"\n'


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    shutil.copytree(shipped_rules_dir(), tmp_path / "rules")
    (tmp_path / "monitor.toml").write_text(GOOD_CONFIG)
    d = Daemon(str(tmp_path / "monitor.toml"))
    settings, rules = d._load()
    from monitor.store import Store

    d.store = Store.open(settings.storage_url)
    d._apply(settings, rules)
    yield d
    d.store.close()


def _kept(d: Daemon, before: tuple[object, object], caplog: pytest.LogCaptureFixture) -> None:
    assert (d.settings, d.rules) == before
    assert "keeping the last good configuration and rules" in caplog.text
    assert d.last_reload is not None and d.last_reload["ok"] is False


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_config_mistake_keeps_the_last_good_set(daemon: Daemon, tmp_path: Path, case: str,
                                                caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_TEST_UNSET_VARIABLE", raising=False)
    before = (daemon.settings, daemon.rules)
    config = tmp_path / "monitor.toml"
    text, message = MISTAKES[case]
    config.write_text(text)
    with caplog.at_level(logging.ERROR, logger="monitor.daemon"):
        assert daemon.reload(reason="SIGHUP") is False
    _kept(daemon, before, caplog)
    assert message.replace("bad.toml", str(config)) in caplog.text


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_rule_mistake_keeps_the_last_good_set(daemon: Daemon, tmp_path: Path, case: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    before = (daemon.settings, daemon.rules)
    target = tmp_path / "rules" / f"{case}.yaml"
    shutil.copy(BAD / f"{case}.yaml", target)
    with caplog.at_level(logging.ERROR, logger="monitor.daemon"):
        assert daemon.reload(reason="rule files changed", rules_only=True) is False
    _kept(daemon, before, caplog)
    for problem in EXPECTED[case]:
        assert f"{target}:{problem}" in caplog.text
    # The daemon still matches with its old rules.
    assert daemon.poller.matcher.match("CPC halts loadings at Novorossiysk after a storm", "")


def test_a_good_edit_is_taken(daemon: Daemon, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "btc-diversion.yaml").unlink()
    assert daemon.reload(reason="rule files changed", rules_only=True) is True
    assert "btc-diversion" not in daemon.rules.ids and len(daemon.rules.ids) == 3
