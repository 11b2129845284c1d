"""The daemon serves the web view when ``[web] listen`` is set: the pages answer
while it polls, and SIGTERM still stops it cleanly (exit 0); off loopback
without authentication it logs why and runs without the view."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from waiting import wait_until

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # starts the daemon


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, server: FeedServer, listen: str) -> Path:
    server.routes["/f.xml"] = Feed(feed_doc(0, 20))
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///state/monitor.db"\n'
                      f'[rules]\ndir = "{shipped_rules_dir()}"\n[web]\nlisten = "{listen}"\n'
                      f'[[feeds]]\nurl = "{server.url("/f.xml")}"\ninterval = "1m"\n')
    return config


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


def test_the_daemon_serves_the_view_and_stops_cleanly(feed_server: FeedServer,
                                                      tmp_path: Path) -> None:
    port = _port()
    daemon = Daemon(_config(tmp_path, feed_server, f"127.0.0.1:{port}"), cli_env())
    try:
        daemon.wait_for("hits stored", lambda: daemon.stored_hits() > 0)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(base + "/")[0] == 200, "the web view", detail=daemon.stderr)
        status, body = _get(base + "/api/hits")
        assert status == 200 and len(json.loads(body)) == daemon.stored_hits()
        assert _get(base + "/feeds")[0] == 200
        assert "web view on http://127.0.0.1:" in daemon.stderr()
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0, daemon.stderr()
    assert _get(f"http://127.0.0.1:{port}/")[0] == 0  # no longer listening


def test_off_loopback_without_authentication_the_daemon_runs_without_the_view(
        feed_server: FeedServer, tmp_path: Path) -> None:
    daemon = Daemon(_config(tmp_path, feed_server, f"0.0.0.0:{_port()}"), cli_env())
    try:
        daemon.wait_for("hits stored", lambda: daemon.stored_hits() > 0)
        wait_until(lambda: "refusing to serve the web view" in daemon.stderr(), "the refusal",
                   detail=daemon.stderr)
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(10) == 0, daemon.stderr()
