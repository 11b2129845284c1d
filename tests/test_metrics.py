"""The optional Prometheus endpoint: the daemon's counters, the gauges read from the
store at scrape time, and the health probes on the same listener."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from prometheus_client.parser import text_string_to_metric_families
from servers import Hook, Reply

from monitor import __version__
from monitor.config import parse_settings
from monitor.metrics import Metrics
from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.pipeline import FeedOutcome, PollReport
from monitor.rules import shipped_rules_dir
from monitor.settings import Settings
from monitor.store import Store

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
OK, FAILING, SILENT, GONE, NEVER = (f"https://{n}.example/rss"
                                    for n in ("ok", "failing", "silent", "gone", "never"))


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[str, float]:
    """``name{label="v",...}`` -> value, for every news_monitor_ sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return {k: v for k, v in out.items() if k.startswith("news_monitor_")}


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    m.serve("127.0.0.1", 0)
    yield m
    m.close()


def test_metrics_endpoint_serves_poll_and_delivery_counters(metrics: Metrics) -> None:
    metrics.rules_loaded(["btc-diversion", "cpc-disruption", "quiet-rule"])
    metrics.observe_poll(PollReport((
        FeedOutcome("a", "A", 200, new_items=3,
                    hits=(("btc-diversion", 1), ("cpc-disruption", 2))),
        FeedOutcome("d", "D", 304, hits=(("cpc-disruption", 1),)),
        FeedOutcome("b", "B", "timeout", error="took too long"),
        FeedOutcome("c", "C", 500, error="HTTP 500"),
    ), skipped=0, seconds=0.7))
    metrics.observe_deliveries(sent=2, failed=1)
    status, text = get(f"http://127.0.0.1:{metrics.port}/metrics")
    assert status == 200
    assert "news_monitor_polls_total 4.0" in text
    assert 'news_monitor_fetch_errors_total{kind="timeout"} 1.0' in text
    assert 'news_monitor_fetch_errors_total{kind="http"} 1.0' in text
    assert "news_monitor_items_total 3.0" in text
    assert 'news_monitor_hits_total{rule="cpc-disruption"} 3.0' in text
    assert 'news_monitor_hits_total{rule="btc-diversion"} 1.0' in text
    assert 'news_monitor_hits_total{rule="quiet-rule"} 0.0' in text  # present before a hit
    assert 'news_monitor_deliveries_total{state="sent"} 2.0' in text
    assert "news_monitor_poll_duration_seconds_count 1.0" in text


def test_build_reload_and_every_rule_counter_are_there_from_the_start(metrics: Metrics) -> None:
    metrics.rules_loaded(["a-rule", "b-rule"])
    got = samples(get(f"http://127.0.0.1:{metrics.port}/metrics")[1])
    assert got[f'news_monitor_build_info{{version="{__version__}"}}'] == 1
    assert got["news_monitor_config_last_reload_successful"] == 1
    assert (got['news_monitor_hits_total{rule="a-rule"}'],
            got['news_monitor_hits_total{rule="b-rule"}']) == (0, 0)
    assert (got['news_monitor_deliveries_total{state="sent"}'],
            got['news_monitor_deliveries_total{state="failed"}']) == (0, 0)
    assert got["news_monitor_store_up"] == 0  # no store attached yet: no store gauges
    assert not any(k.startswith("news_monitor_feeds") for k in got)
    metrics.reloaded(False)
    metrics.rules_loaded(["a-rule", "b-rule", "c-rule"])  # a reload that added one
    got = samples(get(f"http://127.0.0.1:{metrics.port}/metrics")[1])
    assert got["news_monitor_config_last_reload_successful"] == 0
    assert got['news_monitor_hits_total{rule="c-rule"}'] == 0
    metrics.reloaded(True)
    got = samples(get(f"http://127.0.0.1:{metrics.port}/metrics")[1])
    assert got["news_monitor_config_last_reload_successful"] == 1


def test_health_probes_and_unknown_paths(metrics: Metrics) -> None:
    base = f"http://127.0.0.1:{metrics.port}"
    assert get(base + "/-/healthy") == (200, "OK\n")
    status, text = get(base + "/-/ready")
    assert (status, text) == (503, "not ready: starting: the store is not open yet\n")
    metrics.ready()
    assert get(base + "/-/ready") == (200, "OK\n")
    metrics.ready("stopping")
    assert get(base + "/-/ready") == (503, "not ready: stopping\n")
    assert get(base + "/-/healthy")[0] == 200
    for path in ("/", "/metrics/", "/favicon.ico", "/-/reload"):
        status, text = get(base + path)
        assert status == 404, path
        assert "/metrics" in text
    assert get(base + "/metrics?name[]=news_monitor_store_up")[0] == 200


def _settings(tmp_path: Path) -> Settings:
    return parse_settings(
        "".join(f'[[feeds]]\nurl = "{u}"\n' for u in (OK, FAILING, SILENT, GONE, NEVER))
        + '[[desks]]\nname = "energy"\nwebhook_url = "https://hooks.example.org/x"\n'
        'email = ["energy@example.org"]\n[smtp]\nhost = "localhost"\n',
        "monitor.toml", base=tmp_path)


def _fill(store: Store) -> None:
    """Feeds in every state; two hits, owed to the desk's two channels; one
    delivery failed for good, one sent."""
    store.register_desks(["energy"], T0 - timedelta(hours=1))
    store.sync_feeds([(u, None) for u in (OK, FAILING, SILENT, GONE)]
                     + [("https://unconfigured.example/rss", None)])
    made = []
    for n, title in enumerate(("CPC halts loadings", "CPC resumes loadings")):
        item = Item(OK, f"g{n}", title, "", None, T0, "en", f"fp{n}")
        store.commit_poll(FeedState(OK, last_polled=T0, last_status="200"),
                          [NewItem(item, (Match("cpc-disruption", 90.0, (
                              Evidence("title", "CPC", "CPC", 0, 3, 100.0),)),))],
                          {"cpc-disruption": ("v1", Severity.HIGH)}, T0)
        made.append(n)
    hit_ids = [h.id for h in store.list_hits()]
    store.save_feed_states([
        FeedState(FAILING, last_polled=T0 + timedelta(minutes=1), last_status="timeout",
                  error="timed out", failures=1, next_poll=T0),
        FeedState(SILENT, last_polled=T0, last_status="304", flag="silent: nothing new"),
        FeedState(GONE, last_polled=T0, last_status="410", error="HTTP 410",
                  disabled="410 Gone at 2026-03-04T05:06:07Z"),
        FeedState("https://unconfigured.example/rss", last_polled=T0 + timedelta(hours=1),
                  error="HTTP 500"),  # not configured: counted nowhere
    ])
    failed = store.create_delivery("energy", "webhook", "digest", hit_ids[:1], now=T0)
    assert failed is not None
    store.mark_failed(failed[0], "webhook: HTTP 404", permanent=True, next_attempt=None)
    sent = store.create_delivery("energy", "email", "digest", hit_ids, now=T0)
    assert sent is not None
    store.mark_sent(sent[0], T0)


def test_store_gauges_count_what_the_store_holds(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _fill(store)
    metrics = Metrics()
    metrics.store.attach(lambda: (settings, store))
    from prometheus_client import generate_latest

    got = samples(generate_latest(metrics.registry).decode())
    assert {k: v for k, v in got.items() if k.startswith("news_monitor_feeds")} == {
        'news_monitor_feeds{state="ok"}': 2,  # one polled fine, one never polled
        'news_monitor_feeds{state="failing"}': 1, 'news_monitor_feeds{state="silent"}': 1,
        'news_monitor_feeds{state="disabled"}': 1}
    # Webhook: one hit failed for good, the other owed; email: both sent.
    assert got["news_monitor_deliveries_pending"] == 1
    assert got["news_monitor_deliveries_failed"] == 1
    assert got["news_monitor_last_poll_timestamp_seconds"] == (
        T0 + timedelta(minutes=1)).timestamp()
    assert got["news_monitor_store_up"] == 1


def test_every_feed_state_is_present_and_a_store_never_polled_says_0(
        store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    metrics = Metrics()
    metrics.store.attach(lambda: (settings, store))
    from prometheus_client import generate_latest

    got = samples(generate_latest(metrics.registry).decode())
    assert [got[f'news_monitor_feeds{{state="{s}"}}'] for s in
            ("ok", "failing", "silent", "disabled")] == [5, 0, 0, 0]
    assert (got["news_monitor_deliveries_pending"], got["news_monitor_deliveries_failed"],
            got["news_monitor_last_poll_timestamp_seconds"]) == (0, 0, 0)


def test_store_gauges_are_cached_and_a_broken_store_never_fails_a_scrape(
        tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    settings = _settings(tmp_path)
    db = tmp_path / "monitor.db"
    store = Store.open(f"sqlite:///{db}")
    _fill(store)
    now = [100.0]
    metrics = Metrics(store_cache=5.0, clock=lambda: now[0])
    metrics.store.attach(lambda: (settings, store))
    try:
        assert samples(generate_latest(metrics.registry).decode())[
            "news_monitor_deliveries_failed"] == 1
        store.close()
        db.write_bytes(b"this is not a database" * 512)  # every query fails from now on
        for name in ("-wal", "-shm"):
            (tmp_path / f"monitor.db{name}").unlink(missing_ok=True)
        now[0] += 4.0  # within the cache: no query, the same figures
        got = samples(generate_latest(metrics.registry).decode())
        assert (got["news_monitor_store_up"], got["news_monitor_deliveries_failed"]) == (1, 1)
        now[0] += 1.0
        got = samples(generate_latest(metrics.registry).decode())
        assert got["news_monitor_store_up"] == 0
        assert not any(k.startswith(("news_monitor_feeds", "news_monitor_deliveries_p",
                                     "news_monitor_deliveries_f", "news_monitor_last_poll"))
                       for k in got)
        assert got["news_monitor_build_info" + f'{{version="{__version__}"}}'] == 1
    finally:
        store.close()


# -- on the real daemon ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float] | None:
    try:
        return samples(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=5).read().decode())
    except OSError:  # not listening yet
        return None


@pytest.mark.slow
def test_the_daemons_metrics_count_what_a_digest_process_failed(
        feed_server: FeedServer, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), rules)
    feed_server.routes["/a.xml"] = Feed(feed_doc(1, 4))  # entry 3: a CPC story
    port = _free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
        '[poll]\ninterval = "2s"\ntimeout = "5s"\n'
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/a.xml")}"\n'
        '[[desks]]\nname = "energy"\nrules = ["*"]\nschedule = "0 3 1 1 *"\n'
        'slack_webhook = "env:NM_TEST_SLACK"\n')
    with Hook() as slack:
        slack.replies.append(Reply(404, "no_service"))
        env = cli_env()
        env["NM_TEST_SLACK"] = slack.url()
        daemon = Daemon(config, env)
        base = f"http://127.0.0.1:{port}"
        try:
            daemon.wait_for("ready", lambda: _probe(base + "/-/ready") == 200)
            assert get(base + "/-/healthy") == (200, "OK\n")
            assert get(base + "/nothing-here")[0] == 404
            first = _scrape(port)
            assert first is not None
            rule_ids = sorted(p.stem for p in rules.glob("*.yaml"))
            assert [k for k in first if k.startswith("news_monitor_hits_total")] == [
                f'news_monitor_hits_total{{rule="{r}"}}' for r in rule_ids]  # at 0, before a hit
            assert first[f'news_monitor_build_info{{version="{__version__}"}}'] == 1
            assert first["news_monitor_config_last_reload_successful"] == 1
            assert first["news_monitor_store_up"] == 1

            def polled_with_a_pending_hit() -> bool:
                got = _scrape(port) or {}
                return (got.get("news_monitor_deliveries_pending") == 1
                        and got.get("news_monitor_last_poll_timestamp_seconds", 0) > 0)

            daemon.wait_for("the hit, owed to Slack", polled_with_a_pending_hit)
            got = _scrape(port)
            assert got is not None
            assert got['news_monitor_feeds{state="ok"}'] == 1
            assert got['news_monitor_hits_total{rule="cpc-disruption"}'] == 1

            # Another process's digest fails for good (Slack 404 no_service).
            digest = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                                     "digest"], capture_output=True, text=True, env=env,
                                    timeout=60)
            assert len(slack.requests) == 1, digest.stderr
            daemon.wait_for("the failure in the daemon's gauge",
                            lambda: (_scrape(port) or {}).get(
                                "news_monitor_deliveries_failed") == 1)
            got = _scrape(port)
            assert got is not None
            assert got["news_monitor_deliveries_pending"] == 0  # failed for good: not owed
            assert got['news_monitor_deliveries_total{state="failed"}'] == 0  # not this process

            # A broken rule file: the reload is rejected and the gauge says so.
            broken = rules / "cpc-disruption.yaml"
            broken.write_text(broken.read_text().replace("severity:", "severity: urgent\nx:"))
            daemon.wait_for("the rejected reload", lambda: (_scrape(port) or {}).get(
                "news_monitor_config_last_reload_successful") == 0)
            sample = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
            (tmp_path / "metrics.txt").write_text(sample)  # for a look with --basetemp

            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=10) == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()


def _probe(url: str) -> int | None:
    try:
        return get(url)[0]
    except OSError:
        return None
