"""The real daemon as a subprocess: loopback feeds polled every 2 s, signals, sd_notify."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process


@pytest.fixture
def setup(feed_server: FeedServer, tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    rules = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), rules)
    feed_server.routes["/a.xml"] = Feed(feed_doc(1, 2))
    feed_server.routes["/b.xml"] = Feed(feed_doc(2, 2))
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
        '[poll]\ninterval = "2s"\ntimeout = "5s"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/a.xml")}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/b.xml")}"\n')
    yield feed_server, config, rules


def test_daemon_polls_reloads_and_stops(setup: tuple[FeedServer, Path, Path],
                                        tmp_path: Path) -> None:
    server, config, rules = setup
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(0.2)
    env = cli_env("JOURNAL_STREAM")
    env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="1000000")
    daemon = Daemon(config, env)
    messages: list[str] = []
    listening = threading.Event()

    def listen() -> None:  # like systemd: always reading
        while not listening.is_set():
            with contextlib.suppress(TimeoutError, BlockingIOError):
                messages.append(sock.recv(4096).decode())

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()

    def drain() -> str:
        return "\n".join(messages)

    try:
        daemon.wait_for("READY=1", lambda: "READY=1" in drain())
        daemon.wait_for("WATCHDOG=1", lambda: "WATCHDOG=1" in drain())
        daemon.wait_for("first poll", lambda: server.count("/a.xml") >= 1
                        and server.count("/b.xml") >= 1)
        assert daemon.hits() == []

        # A new entry about a CPC halt becomes a hit within seconds.
        server.routes["/a.xml"] = Feed(feed_doc(1, 4))  # entry 3 is a CPC story
        started = time.monotonic()
        daemon.wait_for("the hit", lambda: daemon.stored_hits() == 1)
        assert time.monotonic() - started < 10
        assert daemon.hits()[0]["rule"] == "cpc-disruption"

        # A broken rule file, then SIGHUP: the daemon keeps its last good rules.
        broken = rules / "cpc-disruption.yaml"
        broken.write_text(broken.read_text().replace("severity:", "severity: urgent\nseverity_:"))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for("the rejected reload", lambda: "keeping the last good" in daemon.stderr())
        assert f"{broken}:" in daemon.stderr()
        assert daemon.proc.poll() is None
        server.routes["/b.xml"] = Feed(feed_doc(2, 4))
        daemon.wait_for("a hit on the old rules", lambda: daemon.stored_hits() == 2)
        assert len(daemon.hits()) == 2

        # SIGTERM: exit 0 within 10 s.
        stopped = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=10) == 0
        assert time.monotonic() - stopped < 10
        assert "STOPPING=1" in drain()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        listening.set()
        reader.join()
        sock.close()


def test_a_restart_after_kill_takes_over_the_dead_instances_leases_at_once(
        setup: tuple[FeedServer, Path, Path], tmp_path: Path) -> None:
    """Feeds leased by an instance of this host whose process is gone (killed with
    SIGKILL mid-cycle) are polled as soon as the next daemon starts, not when the
    leases run out; a lease of another host's instance is left to expire."""
    import subprocess
    import sys

    from monitor.store import Store

    server, config, _ = setup
    (tmp_path / "state").mkdir()
    store = Store.open(f"sqlite:///{tmp_path / 'state' / 'monitor.db'}")
    a, b = server.url("/a.xml"), server.url("/b.xml")
    store.sync_feeds([(a, None), (b, None)])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}"  # that process has ended
    assert store.claim_due_feeds(dead, [a], lease=3600) == [a]
    assert store.claim_due_feeds("elsewhere.example:1", [b], lease=3600) == [b]
    store.close()
    daemon = Daemon(config, cli_env())
    try:
        daemon.wait_for("the dead instance's feed polled", lambda: server.count("/a.xml") >= 1)
        assert f"released the leases of {dead}" in daemon.stderr()
        assert server.count("/b.xml") == 0  # another host's lease stands
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(timeout=30)
