"""Polling end to end: real loopback HTTP server, the real CLI in a subprocess, SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, Status, feed_doc
from procenv import cli_env

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=config.parent,
                          env=env)


def write_config(tmp_path: Path, urls: list[str], db: str = "sqlite:///state/monitor.db"
                 ) -> Path:
    feeds = "".join(f'[[feeds]]\nurl = "{u}"\nname = "Outlet {i}"\n\n'
                    for i, u in enumerate(urls))
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{db}"\n\n'
                      f'[rules]\ndir = "{shipped_rules_dir()}"\n\n[poll]\ntimeout = "5s"\n\n'
                      + feeds)
    return config


@pytest.fixture
def eight_feeds(feed_server: FeedServer, tmp_path: Path, store_url: str
                ) -> tuple[FeedServer, Path]:
    """Eight feeds of 30 entries, and a config storing them on SQLite, then PostgreSQL."""
    for i in range(8):
        feed_server.routes[f"/feed{i}.xml"] = Feed(feed_doc(i, 30))
    return feed_server, write_config(tmp_path, [feed_server.url(f"/feed{i}.xml")
                                                for i in range(8)], db=store_url)


def status(config: Path) -> dict:
    result = run(config, "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_first_second_and_third_poll(eight_feeds: tuple[FeedServer, Path]) -> None:
    server, config = eight_feeds
    first = run(config, "poll")
    assert first.returncode == 0, first.stderr
    assert "8 ok, 0 failed; 240 new items, 24 new hits" in first.stdout
    doc = status(config)
    assert doc["items"] == 240 and doc["hits"] == 24
    assert [f["items"] for f in doc["feeds"]] == [30] * 8
    assert {f["last_status"] for f in doc["feeds"]} == {200}

    # Second poll: conditional requests, all 304, nothing stored.
    second = run(config, "poll")
    assert second.returncode == 0, second.stderr
    assert "0 new items" in second.stdout
    for i in range(8):
        log = server.requests(f"/feed{i}.xml")
        assert len(log) == 2 and log[1].status == 304
        assert "if-none-match" in log[1].headers
    assert {f["last_status"] for f in status(config)["feeds"]} == {304}

    # Third poll: one new entry in one feed is stored alone.
    server.routes["/feed5.xml"] = Feed(feed_doc(5, 31))
    third = run(config, "poll")
    assert third.returncode == 0, third.stderr
    assert "1 new items" in third.stdout
    doc = status(config)
    assert doc["items"] == 241
    assert [f["items"] for f in doc["feeds"]] == [30] * 5 + [31] + [30] * 2
    assert doc["feeds"][5]["last_status"] == 200 and doc["feeds"][4]["last_status"] == 304


def test_failures_are_reported_per_feed_and_the_poll_still_succeeds(
        feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/ok.xml"] = Feed(feed_doc(1, 5))
    feed_server.routes["/gone.xml"] = Status(410)
    feed_server.routes["/busy.xml"] = Status(429, retry_after="3600")
    feed_server.routes["/broken.xml"] = Status(500)
    feed_server.routes["/page.html"] = Feed(b"<html><body><p>Hello</p></body></html>",
                                            content_type="text/html")
    names = ["/ok.xml", "/gone.xml", "/busy.xml", "/broken.xml", "/missing.xml", "/page.html"]
    config = write_config(tmp_path, [feed_server.url(n) for n in names])
    result = run(config, "poll")
    assert result.returncode == 0, result.stderr
    assert "1 ok, 5 failed; 5 new items" in result.stdout
    feeds = {f["url"].rsplit("/", 1)[1]: f for f in status(config)["feeds"]}
    assert feeds["ok.xml"]["error"] is None and feeds["ok.xml"]["items"] == 5
    assert feeds["gone.xml"]["last_status"] == 410 and feeds["gone.xml"]["next_poll"] is None
    assert feeds["busy.xml"]["last_status"] == 429
    assert feeds["broken.xml"]["last_status"] == 500 and feeds["broken.xml"]["failures"] == 1
    assert feeds["missing.xml"]["last_status"] == 404
    assert feeds["page.html"]["last_status"] == 200
    assert "not a feed" in feeds["page.html"]["error"]
    # A second poll skips the gone feed and counts failures in a row.
    again = run(config, "poll")
    assert again.returncode == 0 and "1 skipped" in again.stdout
    assert feed_server.count("/gone.xml") == 1
    feeds = {f["url"].rsplit("/", 1)[1]: f for f in status(config)["feeds"]}
    assert feeds["broken.xml"]["failures"] == 2


def test_a_poll_where_every_feed_failed_exits_1_with_its_summary(
        feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/broken.xml"] = Status(500)
    config = write_config(tmp_path, [feed_server.url("/broken.xml"),
                                     feed_server.url("/missing.xml")])
    result = run(config, "poll")
    assert result.returncode == 1
    assert result.stdout.strip().endswith("0 ok, 2 failed; 0 new items, 0 new hits")
    assert "FAIL" in result.stderr
    # One feed back: the cycle succeeded, whatever the other did.
    feed_server.routes["/broken.xml"] = Feed(feed_doc(1, 2))
    again = run(config, "poll")
    assert again.returncode == 0 and "1 ok, 1 failed" in again.stdout


def test_bad_config_exits_1_with_a_located_message(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[poll]\ninterval = "5 minutes"\n')
    result = run(config, "poll")
    assert result.returncode == 1
    assert result.stderr.strip() == (f'{config}:2: poll.interval: "5 minutes" is not a '
                                     "duration such as 5m")


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none",
                                 "sqlite:////proc/no-such-dir/monitor.db",
                                 "sqlite:///not-a-database.txt"])
def test_an_unreachable_store_exits_1_and_polls_nothing(tmp_path: Path, url: str,
                                                        feed_server: FeedServer) -> None:
    (tmp_path / "not-a-database.txt").write_text("notes, not SQLite\n" * 100)
    feed_server.routes["/feed.xml"] = Feed(feed_doc(0, 3))
    config = write_config(tmp_path, [feed_server.url("/feed.xml")], db=url)
    result = run(config, "poll")
    assert result.returncode == 1
    assert result.stderr.startswith("news-monitor: cannot open the store: "), result.stderr
    assert result.stdout == ""
    assert feed_server.requests() == []  # nothing fetched that could not be stored
    for command in ("hits", "status"):  # the same one line, whichever way they read
        other = run(config, command)
        assert (other.returncode, other.stderr) == (1, result.stderr)


def test_broken_rules_exit_1_before_anything_is_fetched(tmp_path: Path,
                                                        feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Feed(feed_doc(0, 3))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text("id: broken\ntitle: Broken\ndescription: x\n"
                                       "severity: high\nterms: []\n")
    config = write_config(tmp_path, [feed_server.url("/feed.xml")])
    config.write_text(config.read_text().replace(str(shipped_rules_dir()), str(rules)))
    # With the database ready, poll sends the fetch child its requests at once;
    # the child still checks the rules first and is stopped then.
    assert run(config, "status").returncode == 0
    for _ in range(3):
        result = run(config, "poll")
        assert result.returncode == 1
        assert result.stderr.strip() == f"{rules / 'broken.yaml'}:5:8: terms: must not be empty"
    assert feed_server.requests() == []


def test_the_offline_example_runs(tmp_path: Path) -> None:
    example = tmp_path / "examples"
    subprocess.run(["cp", "-r", str(ROOT / "examples"), str(example)], check=True)
    config = example / "monitor.toml"
    text = config.read_text().replace('dir = "../rules"', f'dir = "{shipped_rules_dir()}"')
    config.write_text(text)
    result = run(config, "poll")
    assert result.returncode == 0, result.stderr
    assert "3 ok, 0 failed; 12 new items" in result.stdout
    hits = run(config, "hits", "--format", "jsonl")
    rules = sorted(json.loads(line)["rule"] for line in hits.stdout.splitlines())
    assert rules.count("cpc-disruption") == 2
    assert "btc-diversion" in rules and "eaeu-grain-ban" in rules
    assert "sanctioned-transit" in rules


def test_a_gap_between_polls_is_reported(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.routes["/f.xml"] = Feed(feed_doc(1, 5))
    config = write_config(tmp_path, [feed_server.url("/f.xml")])
    assert run(config, "poll").returncode == 0
    # Ten newer entries, none of which overlaps what was seen: some were missed.
    feed_server.routes["/f.xml"] = Feed(feed_doc(1, 5, start=20))
    result = run(config, "--log-level", "warning", "poll")
    assert "may have scrolled out unseen" in result.stderr
    flag = status(config)["feeds"][0]["flag"]
    assert flag.startswith("gap: entries published between")
