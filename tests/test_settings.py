"""Configuration: defaults, parsing, and one exact message per operator mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mistakes import MISTAKES

from monitor.channels import SPECS
from monitor.channels.email import SmtpConfig
from monitor.channels.slack import SlackOptions
from monitor.channels.webhook import WebhookOptions
from monitor.config import load_settings, parse_settings
from monitor.config_keys import secret
from monitor.errors import ConfigError
from monitor.models import Severity
from monitor.settings import DEFAULT_FEEDS, DESK_KEYS, default_settings
from monitor.timespec import format_duration, parse_cron, parse_duration

GOOD = """\
# a comment
[storage]
url = "sqlite:///state/test.db"

[rules]
dir = "rules"

[poll]
interval = "10m"
concurrency = 8
timeout = "15s"

[[feeds]]
url = "https://example.org/rss"
name = "Example"

[[feeds]]
url = "feeds/local.xml"
interval = "1h30m"

[smtp]
host = "127.0.0.1"
port = 2525
security = "starttls"
sender = "Monitor <m@example.org>"
password = "env:NM_TEST_SMTP_PASSWORD"

[[desks]]
name = "energy"
rules = ["cpc-disruption", "btc-diversion"]
schedule = "0 7 * * 1-5"
timezone = "Asia/Almaty"
email = ["desk@example.org"]
alert_min_severity = "high"
quiet_hours = "22:00-07:00"
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    return tmp_path


def test_parses_every_section(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SMTP_PASSWORD", "hunter2")
    s = parse_settings(GOOD, "monitor.toml", base=base)
    assert s.storage_url == f"sqlite:///{base / 'state' / 'test.db'}"
    assert s.rules_dir == base / "rules"
    assert (s.poll.interval, s.poll.concurrency, s.poll.timeout) == (600, 8, 15)
    assert s.feeds[0].url == "https://example.org/rss" and s.feeds[0].name == "Example"
    assert s.feeds[1].url == str(base / "feeds" / "local.xml")
    assert s.feed_interval(s.feeds[1]) == 5400 and s.feed_interval(s.feeds[0]) == 600
    smtp = s.channel_tables["smtp"]
    assert isinstance(smtp, SmtpConfig) and smtp.port == 2525 and smtp.security == "starttls"
    assert smtp.password is not None and smtp.password.reveal() == "hunter2"
    desk = s.desks[0]
    assert desk.alert_min_severity is Severity.HIGH
    assert desk.wants("cpc-disruption") and not desk.wants("eaeu-grain-ban")
    assert desk.channels == ("email",)
    assert desk.quiet_hours is not None and desk.quiet_hours[0].hour == 22


def test_the_delivery_timeout_is_read_and_has_a_default(base: Path) -> None:
    assert parse_settings("", "monitor.toml", base=base).delivery_timeout == 15
    given = parse_settings('[delivery]\ntimeout = "1m30s"\n', "monitor.toml", base=base)
    assert given.delivery_timeout == 90


def test_secret_never_shows_its_value(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SMTP_PASSWORD", "hunter2")
    s = parse_settings(GOOD, "monitor.toml", base=base)
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.channel_tables["smtp"])


def test_embedded_default_works_without_a_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    s = load_settings(None)
    assert s.source == "<default>"
    assert 10 <= len(s.feeds) <= 20 and len(s.feeds) == len(DEFAULT_FEEDS)
    assert all(f.url.startswith("https://") for f in s.feeds)
    assert s.storage_url == f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
    assert (s.rules_dir / "cpc-disruption.yaml").is_file()


def test_systemd_directories_are_honoured(tmp_path: Path) -> None:
    (tmp_path / "conf" / "rules").mkdir(parents=True)
    s = default_settings({"STATE_DIRECTORY": str(tmp_path / "state"),
                          "CONFIGURATION_DIRECTORY": str(tmp_path / "conf")})
    assert s.storage_url == f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
    assert s.rules_dir == tmp_path / "conf" / "rules"


def test_config_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "monitor.toml").write_text('[poll]\ninterval = "1m"\n')
    (tmp_path / "other.toml").write_text('[poll]\ninterval = "2m"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    assert load_settings(None).poll.interval == 60
    monkeypatch.setenv("NEWS_MONITOR_CONFIG", str(tmp_path / "other.toml"))
    assert load_settings(None).poll.interval == 120
    assert load_settings(tmp_path / "monitor.toml").poll.interval == 60


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1d2h3m4s", 93784),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "m", "1.5h", "-5m", "5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cron_weekdays_are_translated_for_apscheduler() -> None:
    # Standard cron: 0 and 7 are Sunday, 1-5 Monday to Friday.
    assert parse_cron("0 7 * * 1-5")["day_of_week"] == "mon,tue,wed,thu,fri"
    assert parse_cron("0 7 * * 0")["day_of_week"] == "sun"
    assert parse_cron("0 7 * * 7")["day_of_week"] == "sun"
    assert parse_cron("0 7 * * 5-7")["day_of_week"] == "fri,sat,sun"
    assert parse_cron("*/15 6-18 * * *") == {"minute": "*/15", "hour": "6-18", "day": "*",
                                             "month": "*", "day_of_week": "*"}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_has_one_exact_message(case: str, base: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_TEST_UNSET_VARIABLE", raising=False)
    text, message = MISTAKES[case]
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "bad.toml", base=base)
    assert [str(p) for p in err.value.problems] == [message]


def test_all_problems_are_reported_at_once(base: Path) -> None:
    text = '[poll]\nconcurrency = 0\ntimeout = "soon"\n[log]\nlevel = "loud"\n'
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "bad.toml", base=base)
    assert [p.line for p in err.value.problems] == [2, 3, 5]


# -- the channels' keys --------------------------------------------------------


def test_each_key_is_declared_once_and_channels_are_named_once() -> None:
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    desk_keys = [k.name for k in DESK_KEYS] + [k.name for s in SPECS for k in s.desk_keys]
    assert len(desk_keys) == len(set(desk_keys))
    assert all(k.secret for s in SPECS for k in s.desk_keys if k.parse is secret)


def test_a_channel_key_is_read_by_its_channel(base: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", "https://hooks.example/x")
    s = parse_settings('[[desks]]\nname = "energy"\nslack_webhook = "env:NM_TEST_SLACK"\n'
                       'webhook_url = "https://hooks.example/y"\n', "monitor.toml", base=base)
    desk = s.desks[0]
    assert desk.channels == ("slack", "webhook")  # the registry's order
    assert isinstance(desk.channel_options["slack"], SlackOptions)
    assert desk.channel_options["webhook"] == WebhookOptions("https://hooks.example/y")


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(*sys.modules)"],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return set(out.stdout.split())


@pytest.mark.slow
def test_the_channel_modules_import_nothing_heavy() -> None:
    """The configuration imports them, and a poll loads the configuration."""
    loaded = _loaded("import monitor.channels")
    heavy = {"jinja2", "smtplib", "ssl", "urllib.request", "json", "hmac", "email.message",
             "monitor.digest", "monitor.stories", "rapidfuzz", "sqlalchemy", "aiohttp"}
    assert loaded & heavy == set()


@pytest.mark.slow
def test_a_configuration_of_feeds_alone_loads_no_channel() -> None:
    loaded = _loaded("import monitor.config; monitor.config.load_settings('examples/monitor.toml')")
    assert not any(m.startswith("monitor.channels") for m in loaded)
