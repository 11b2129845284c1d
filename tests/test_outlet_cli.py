"""An aggregator's items name their own outlets, end to end: a loopback feed with
``<source>`` polled by the real CLI, then ``hits --format jsonl`` and a digest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer
from golden import FEEDS
from procenv import cli_env

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=config.parent,
                          env=cli_env())


def test_hits_and_digests_show_the_item_s_outlet(feed_server: FeedServer,
                                                  tmp_path: Path) -> None:
    feed_server.routes["/gn.xml"] = Feed((FEEDS / "rss20-aggregator.xml").read_bytes())
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/m.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        f'[[feeds]]\nurl = "{feed_server.url("/gn.xml")}"\nname = "Google News"\n'
        '[[desks]]\nname = "energy"\nrules = ["*"]\nwebhook_url = "https://hooks.example/x"\n')
    polled = _run(config, "poll")
    assert polled.returncode == 0, polled.stderr
    done = _run(config, "hits", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    hits = [json.loads(line) for line in done.stdout.splitlines()]
    by_guid = {h["guid"]: h for h in hits}
    cpc = by_guid["CBMi-cpc-storm"]
    assert (cpc["outlet"], cpc["feed_name"]) == ("Reuters", "Google News")
    assert all(h["outlet"] != "Google News" for h in hits)
    preview = _run(config, "digest", "--preview")
    assert preview.returncode == 0, preview.stderr
    assert "Reuters" in preview.stdout and "Google News" not in preview.stdout
