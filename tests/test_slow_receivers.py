"""A receiver that answers late, on the real daemon: it holds back only its own queue.

The daemon runs as a subprocess with a loopback feed, a Slack stand-in that takes
each post and answers 40 s later (past the 15 s client timeout), and a real SMTP
server for another desk. While the Slack send is stuck, a new entry is stored
within a poll interval, the other desk's alert goes out at once, and SIGTERM
still stops the daemon within its deadline (the stuck send is left to its lease).
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer, feed_doc
from procenv import cli_env
from servers import Hook, Mailbox, Reply

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # it starts the daemon

POLL = 2.0  # the feed's interval, seconds


def test_a_late_slack_holds_back_neither_polling_nor_another_desk(
        feed_server: FeedServer, tmp_path: Path) -> None:
    shutil.copytree(shipped_rules_dir(), tmp_path / "rules")
    feed_server.routes["/a.xml"] = Feed(feed_doc(1, 4))  # entry 3: a CPC story (high)
    with Hook(Reply(delay=40.0)) as late, Mailbox() as mailbox:
        config = tmp_path / "monitor.toml"
        config.write_text(
            '[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
            f'[poll]\ninterval = "{POLL:g}s"\ntimeout = "5s"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {mailbox.port}\n'
            'sender = "News Monitor <monitor@example.org>"\n'
            '[[desks]]\nname = "late"\nrules = ["*"]\nslack_webhook = "env:NM_TEST_SLACK_LATE"\n'
            'alert_min_severity = "high"\n'
            '[[desks]]\nname = "mail"\nrules = ["*"]\nemail = ["desk@example.org"]\n'
            'alert_min_severity = "high"\n'
            f'[[feeds]]\nurl = "{feed_server.url("/a.xml")}"\n')
        env = cli_env()
        env["NM_TEST_SLACK_LATE"] = late.url()
        daemon = Daemon(config, env)
        try:
            daemon.wait_for("the first alerts", lambda: late.requests and mailbox.received)
            stuck_since = late.arrived[0]
            # Slack has the post and answers in 40 s: its send is stuck for 15 s.
            feed_server.routes["/a.xml"] = Feed(feed_doc(1, 14))  # entry 13: CPC again
            published = time.monotonic()
            daemon.wait_for("the new entry's hit", lambda: daemon.stored_hits() == 2)
            stored = time.monotonic() - published
            daemon.wait_for("the mail desk's second alert", lambda: len(mailbox.received) == 2)
            alerted = time.monotonic() - published
            assert time.monotonic() - stuck_since < 15.0, "the Slack send was stuck throughout"
            print(f"\nwith Slack stuck: new entry stored {stored:.2f}s after publication, "
                  f"the other desk's alert {alerted:.2f}s after; Slack got "
                  f"{len(late.requests)} post(s)")
            assert stored < POLL + 2.0
            assert alerted < POLL + 3.0
            assert "CPC" in mailbox.received[1].message["Subject"] or \
                "ALERT" in mailbox.received[1].message["Subject"]
            assert len(late.requests) == 1  # one at a time per queue: nothing piled up

            # SIGTERM while the Slack send is still stuck: the daemon stops in time.
            stopping = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=12) == 0
            assert time.monotonic() - stopping < 10.0
            assert "sends still under way" in daemon.stderr()
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
