"""Telegram and Teams end to end: a desk's keys in monitor.toml -> the registry ->
the Deliverer -> the loopback stand-ins; delivered once, failures retried once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from procenv import cli_env
from standins import TeamsStandIn, TelegramStandIn, server_error

from monitor.config import load_settings
from monitor.deliver import Deliverer
from monitor.errors import ConfigError
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.settings import Settings
from monitor.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = {"cpc-disruption": ("v1", Severity.HIGH), "btc-diversion": ("v1", Severity.MEDIUM)}
TITLES = {"cpc-disruption": "CPC disruption", "btc-diversion": "BTC diversion"}
NO_PAUSE = {"telegram_pause": 0.0, "teams_pause": 0.0}


@pytest.fixture
def telegram() -> Iterator[TelegramStandIn]:
    with TelegramStandIn() as server:
        yield server


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    with TeamsStandIn() as server:
        yield server


def write_config(tmp_path: Path, desk: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "monitor.db"}"\n\n'
                    f"[[desks]]\n{desk}", encoding="utf-8")
    return path


def desk_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telegram: TelegramStandIn,
                  teams: TeamsStandIn, extra: str = "") -> Settings:
    monkeypatch.setenv("NM_TG_TOKEN", telegram.token)
    monkeypatch.setenv("NM_TEAMS_URL", teams.url)
    return load_settings(write_config(tmp_path, (
        'name = "energy"\nrules = ["*"]\n'
        'telegram_bot_token = "env:NM_TG_TOKEN"\ntelegram_chat_id = -1001234567890\n'
        f'telegram_api_url = "{telegram.api_url}"\n'
        'teams_webhook = "env:NM_TEAMS_URL"\n' + extra)))


def add_hits(store: Store, at: datetime, *titles: str) -> None:
    url = "https://reuters.example/rss"
    store.sync_feeds([(url, "Reuters")], now=at)
    new = []
    for n, title in enumerate(titles):
        item = Item(feed_url=url, guid=f"{title}-{n}", title=title, summary="",
                    link=f"https://reuters.example/story/{abs(hash(title))}", published=at,
                    lang="en", fingerprint=f"fp-{title}")
        new.append(NewItem(item, (Match("cpc-disruption", 90.0,
                                        (Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),)))
    store.commit_poll(FeedState(url), new, RULES, at)


def test_a_desk_gets_its_digest_on_telegram_and_teams_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telegram: TelegramStandIn,
        teams: TeamsStandIn) -> None:
    settings = desk_settings(tmp_path, monkeypatch, telegram, teams)
    assert settings.desks[0].channels == ("telegram", "teams")
    store = Store.open(settings.storage_url)
    try:
        now = [T0]
        deliverer = Deliverer(settings, store, TITLES, clock=lambda: now[0], options=NO_PAUSE)
        deliverer.send_digests()  # the desk is first seen now: it starts with later hits
        add_hits(store, T0 + timedelta(minutes=1), "CPC halts loadings at Novorossiysk",
                 "CPC <b>terminal</b> & the SPM")
        now[0] = T0 + timedelta(minutes=2)
        report = deliverer.send_digests()
        assert (report.sent, report.failed, report.hits) == (2, 0, 4)
        [message] = telegram.sent
        assert "CPC halts loadings at Novorossiysk" in message.text
        assert "CPC <b>terminal</b> & the SPM" in message.text  # escaped, shown as written
        [card] = teams.cards
        assert "Novorossiysk" in str(card)
        assert deliverer.send_digests().sent == 0  # each hit once per channel
        assert len(telegram.calls) == 1 and len(teams.bodies) == 1
    finally:
        store.close()


def test_a_failed_telegram_post_is_retried_once_and_holds_back_no_other_channel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telegram: TelegramStandIn,
        teams: TeamsStandIn) -> None:
    settings = desk_settings(tmp_path, monkeypatch, telegram, teams,
                             'alert_min_severity = "high"\n')
    store = Store.open(settings.storage_url)
    try:
        now = [T0]
        deliverer = Deliverer(settings, store, TITLES, clock=lambda: now[0], options=NO_PAUSE)
        deliverer.send_alerts()
        telegram.fail_at[1] = server_error()
        add_hits(store, T0 + timedelta(minutes=1), "CPC suspends exports after a drone attack")
        now[0] = T0 + timedelta(minutes=2)
        report = deliverer.send_alerts()
        assert (report.sent, report.failed, report.permanent) == (1, 1, 0)
        assert len(teams.cards) == 1 and telegram.sent == []
        assert deliverer.retry_due().sent == 0  # not due yet: back-off
        now[0] += timedelta(minutes=2)
        assert deliverer.retry_due().sent == 1
        assert [("drone attack" in m.text) for m in telegram.sent] == [True]
        now[0] += timedelta(hours=2)
        assert deliverer.retry_due().sent == 0 and deliverer.send_alerts().sent == 0
        assert deliverer.send_digests().sent == 0  # the alert claimed it on both channels
        assert len(telegram.sent) == 1 and len(teams.cards) == 1
    finally:
        store.close()


# Line 4 is the desk's [[desks]] header (a missing key), line 6 the key after its name.
@pytest.mark.parametrize(("desk", "line", "message"), [
    ('telegram_bot_token = "env:NM_TG_TOKEN"\n', 4,
     "desks.energy.telegram_chat_id: is required with telegram_bot_token (the chat to post to)"),
    ('telegram_chat_id = "@energy_desk"\n', 4,
     "desks.energy.telegram_bot_token: is required with telegram_chat_id (env:NAME or file:PATH "
     "of the token BotFather gave)"),
    ('telegram_bot_token = "env:NM_TG_TOKEN"\ntelegram_chat_id = "energy desk"\n', 7,
     'desks.energy.telegram_chat_id: expected a numeric chat id such as "-1001234567890" or a '
     "channel's \"@username\""),
    ('teams_webhook = "https://prod.westeurope.logic.azure.com/workflows/x"\n', 6,
     "desks.energy.teams_webhook: secrets are given as env:NAME or file:PATH, never inline"),
])
def test_channel_mistakes_are_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      desk: str, line: int, message: str) -> None:
    monkeypatch.setenv("NM_TG_TOKEN", TelegramStandIn.TOKEN)
    path = write_config(tmp_path, 'name = "energy"\n' + desk)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    [problem] = err.value.problems
    assert (problem.line, problem.message) == (line, message)


@pytest.mark.slow
def test_check_names_the_new_channels_keys_like_any_other(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'name = "energy"\ntelegram_chat_id = "@energy_desk"\n'
                                  'teams_webhok = "env:X"\n')
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "check"],
                          capture_output=True, text=True, env=cli_env(), timeout=60)
    assert done.returncode == 1
    assert f"{path}:7: desks.energy.teams_webhok: unknown key (did you mean 'teams_webhook'?)" \
        in done.stderr.splitlines()
