"""``news-monitor init`` and the first run: the production configuration it
writes passes ``check`` once its secrets are set (and names each one missing
before), nothing is overwritten without ``--force``; a configuration without
desks says, in ``check`` and in the daemon's log, that nothing will be sent."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from procenv import cli_env
from waiting import wait_until

from monitor.cli import main
from monitor.cli.init import COMMENTED_SECRETS, SECRETS, state_dir
from monitor.config import load_settings
from monitor.rules import shipped_rules_dir
from monitor.settings import DEFAULT_FEEDS

NO_DESKS = ("no [[desks]]: hits are stored but nothing is sent; `news-monitor init` writes "
            "a configuration with a desk")


def init(target: Path, *args: str) -> int:
    return main(["init", str(target), *args])


def secret_names(secrets_env: Path) -> list[str]:
    """The variables secrets.env sets (its lines NAME=, not the commented ones)."""
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", secrets_env.read_text(), re.MULTILINE)


@pytest.fixture
def written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    target = tmp_path / "etc"
    assert init(target) == 0
    capsys.readouterr()
    return target


def test_init_writes_a_configuration_a_secrets_template_and_the_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / "folder"  # made when missing
    assert init(target) == 0
    out = capsys.readouterr().out
    config, secrets = target / "monitor.toml", target / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    shipped = sorted(p.name for p in shipped_rules_dir().iterdir() if p.is_file())
    assert sorted(p.name for p in (target / "rules").iterdir()) == shipped
    for name in shipped:
        assert (target / "rules" / name).read_bytes() == (shipped_rules_dir() / name).read_bytes()
    assert secret_names(secrets) == list(SECRETS)
    assert all(f"# {name}=" in secrets.read_text() for name in COMMENTED_SECRETS)
    # It says what it wrote and what comes next.
    for path in (config, secrets, target / "rules"):
        assert f"wrote {path}" in out
    assert f"news-monitor --config {config.absolute()} check" in out


def test_the_configuration_passes_check_once_its_secrets_are_set(
        written: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = written / "monitor.toml"
    for name in secret_names(written / "secrets.env"):
        monkeypatch.setenv(name, "s3cret")
    assert main(["--config", str(config), "check"]) == 0
    out, err = capsys.readouterr()
    assert "16 feeds, 4 rules" in out and re.search(r"\b1 desks?\b", out)
    assert err == ""  # a desk: no warning
    settings = load_settings(config)
    assert [(f.name, f.url) for f in settings.feeds] == list(DEFAULT_FEEDS)
    assert settings.storage_url == f"sqlite:///{written.resolve()}/state/monitor.db"
    assert settings.rules_dir == written.resolve() / "rules"
    assert settings.metrics_listen == "127.0.0.1:9464"
    (desk,) = settings.desks
    assert desk.channels == ("email",)


def test_without_its_secrets_check_names_each_missing_one(
        written: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    names = secret_names(written / "secrets.env")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert main(["--config", str(written / "monitor.toml"), "check"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(names)
    for name, line in zip(names, lines, strict=True):
        assert re.match(rf"^{re.escape(str(written / 'monitor.toml'))}:\d+: .*\b{name}\b",
                        line), line


def test_every_commented_channel_is_valid_once_uncommented(
        written: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = written / "monitor.toml"
    text = re.sub(r"^# ((?:slack|telegram|teams|webhook)_\w+ = )", r"\1",
                  config.read_text(), flags=re.MULTILINE)
    config.write_text(text)
    for name in (*SECRETS, *COMMENTED_SECRETS):
        monkeypatch.setenv(name, "s3cret")
    assert main(["--config", str(config), "check"]) == 0, capsys.readouterr().err
    (desk,) = load_settings(config).desks
    assert set(desk.channels) == {"email", "slack", "telegram", "teams", "webhook"}


def test_init_overwrites_nothing_without_force(
        written: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, secrets = written / "monitor.toml", written / "secrets.env"
    config.write_text("# edited\n")
    secrets.write_text("SMTP_PASSWORD=kept\n")
    secrets.chmod(0o644)
    extra = written / "rules" / "my-topic.yaml"
    extra.write_text("id: my-topic\n")
    assert init(written) == 1
    err = capsys.readouterr().err
    assert f"news-monitor: init: {config} exists (--force overwrites it)" in err
    assert f"{secrets} exists" in err
    assert f"{written / 'rules' / 'cpc-disruption.yaml'} exists" in err
    assert config.read_text() == "# edited\n" and secrets.read_text() == "SMTP_PASSWORD=kept\n"

    assert init(written, "--force") == 0
    assert config.read_text().startswith("# news-monitor configuration")
    assert secret_names(secrets) == list(SECRETS)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert extra.read_text() == "id: my-topic\n"  # not the shipped rules': left alone


def test_the_state_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert state_dir(tmp_path, None, {}) == "state"
    assert state_dir(tmp_path, "/srv/nm", {}) == "/srv/nm"
    assert state_dir(tmp_path, None, {"STATE_DIRECTORY": "/var/lib/x:/var/lib/y"}) == "/var/lib/x"
    # The systemd unit's configuration folder: its state folder, which it may write.
    assert state_dir(Path("/etc/news-monitor"), None, {}) == "/var/lib/news-monitor"
    assert init(tmp_path / "etc", "--state", str(tmp_path / "var")) == 0
    text = (tmp_path / "etc" / "monitor.toml").read_text()
    assert f'url = "sqlite:///{tmp_path / "var"}/monitor.db"' in text


def test_check_warns_when_no_desk_would_be_sent_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    assert main(["check"]) == 0  # the embedded default: valid, but it sends nothing
    out, err = capsys.readouterr()
    assert re.search(r"\b0 desks\b", out)
    assert err == f"<default>: warning: {NO_DESKS}\n"


@pytest.mark.slow  # starts the daemon
def test_the_daemon_says_at_start_that_nothing_is_sent(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///monitor.db"\n'
                      f'[rules]\ndir = "{shipped_rules_dir()}"\n')  # no feeds, no desks
    log = tmp_path / "daemon.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run"],
                                stdout=subprocess.DEVNULL, stderr=err, env=cli_env(),
                                cwd=tmp_path)
    try:
        wait_until(lambda: "started news-monitor" in log.read_text(), "the start line",
                   detail=log.read_text)
        wait_until(lambda: NO_DESKS in log.read_text(), "the warning", 5, detail=log.read_text)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    (line,) = [line for line in log.read_text().splitlines() if NO_DESKS in line]
    assert "warning" in line.lower(), line


def test_an_untouched_secrets_file_does_not_pass_check(
        written: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """systemd's EnvironmentFile= sets NAME= from the template: empty, as good as unset."""
    names = secret_names(written / "secrets.env")
    for name in names:
        monkeypatch.setenv(name, "")
    assert main(["--config", str(written / "monitor.toml"), "check"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.endswith(f"environment variable {name} is empty")
            for name, line in zip(names, lines, strict=True)] == [True] * len(names)
