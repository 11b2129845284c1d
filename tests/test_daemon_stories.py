"""Each story once, on the real daemon: loopback feeds in two languages, one of them
syndicating another's article, alerts and a digest to a webhook stand-in.

Three events are alerted once each as they break. Their later reports (another
outlet in Russian, the same article through a second feed) give no second alert;
a fourth event reported alongside them is alerted, which shows the daemon's alert
pass ran over them. The digest then lists the three stories as three entries, each
with its new reports grouped under it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon
from feedserver import Feed, FeedServer
from procenv import cli_env
from servers import Hook

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # it starts the daemon

# (event, title, summary, lang)
STORM = ("CPC halts tanker loadings at Novorossiysk after storm damages two moorings",
         "The Caspian Pipeline Consortium suspended loadings at its Black Sea terminal after "
         "a storm damaged two of its three single point moorings.")
STORM_RU = ("КТК приостановил отгрузку нефти в Новороссийске после шторма",
            "Каспийский трубопроводный консорциум остановил погрузку танкеров: шторм повредил "
            "два из трех выносных причальных устройств.")
DRONE = ("Drones attack CPC Kropotkinskaya pumping station in southern Russia",
         "Ukrainian drones struck the Kropotkinskaya oil pumping station of the Caspian "
         "Pipeline Consortium, cutting flows of Kazakh crude, the consortium said.")
DRONE_RU = ("Беспилотники атаковали НПС «Кропоткинская» Каспийского трубопроводного консорциума",
            "Атака дронов на нефтеперекачивающую станцию Кропоткинская КТК сократила прокачку "
            "казахстанской нефти, сообщил консорциум.")
BTC = ("Kazakhstan ships first Tengiz oil to Baku for the Baku-Tbilisi-Ceyhan pipeline",
       "KazMunayGas sent the first cargo of Kazakh crude from Aktau across the Caspian to Baku "
       "for export via the BTC pipeline, bypassing Russia.")
BTC_RU = ("Казахстан отправил первую партию тенгизской нефти в Баку для прокачки по БТД",
          "КазМунайГаз отправил из Актау в Баку первую партию казахстанской нефти для экспорта "
          "по нефтепроводу Баку – Тбилиси – Джейхан в обход России.")
COURT = ("Russian court orders Caspian Pipeline Consortium to suspend operations for 30 days",
         "A court in Novorossiysk ordered the CPC to halt oil loadings for 30 days over "
         "environmental violations at its terminal.")


def rss(name: str, entries: list[tuple[str, tuple[str, str], str]]) -> bytes:
    """``entries``: (guid, (title, summary), link)."""
    items = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><guid>{guid}</guid>"
        f"<description>{escape(s)}</description>"
        f"<pubDate>Mon, 05 Jan 2026 09:{i:02d}:00 GMT</pubDate></item>"
        for i, (guid, (t, s), link) in enumerate(entries))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{name}</title><link>https://{name}.example/</link>"
            f"<description>{name}</description>{items}</channel></rss>").encode()


def documents(hook: Hook, kind: str) -> list[dict[str, Any]]:
    docs = [json.loads(r.body) for r in list(hook.requests)]
    return [d for d in docs if d["kind"] == kind]


def stories(docs: list[dict[str, Any]]) -> list[list[str]]:
    """Each story entry of ``docs``: the titles of its hits."""
    return [[h["title"] for h in st["hits"]]
            for d in docs for s in d["sections"] for st in s["stories"]]


def test_later_reports_give_no_second_alert_and_the_digest_groups_them(
        feed_server: FeedServer, tmp_path: Path) -> None:
    shutil.copytree(shipped_rules_dir(), tmp_path / "rules")
    reuters = [("r1", STORM, "https://reuters.example/storm"),
               ("r2", DRONE, "https://reuters.example/drone"),
               ("r3", BTC, "https://reuters.example/btc")]
    feed_server.routes["/reuters.xml"] = Feed(rss("reuters", reuters))
    feed_server.routes["/interfax.xml"] = Feed(rss("interfax", []))
    feed_server.routes["/yahoo.xml"] = Feed(rss("yahoo", []))
    with Hook() as hook:
        config = tmp_path / "monitor.toml"
        config.write_text(
            '[storage]\nurl = "sqlite:///state/monitor.db"\n[rules]\ndir = "rules"\n'
            '[poll]\ninterval = "1s"\ntimeout = "5s"\n'
            f'[[desks]]\nname = "energy"\nrules = ["*"]\nwebhook_url = "{hook.url("/hook")}"\n'
            'alert_min_severity = "medium"\nschedule = "0 0 1 1 *"\n'
            + "".join(f'[[feeds]]\nurl = "{feed_server.url(f"/{n}.xml")}"\n'
                      for n in ("reuters", "interfax", "yahoo")), encoding="utf-8")
        env = cli_env()
        daemon = Daemon(config, env)
        try:
            daemon.wait_for("three alerted stories",
                            lambda: len(stories(documents(hook, "alert"))) == 3, timeout=30)
            # The same article through a second feed: stored, not alerted.
            feed_server.routes["/yahoo.xml"] = Feed(rss("yahoo", [
                ("y1", ("Oil: " + STORM[0], STORM[1]), "https://reuters.example/storm")]))
            daemon.wait_for("the syndicated copy", lambda: daemon.stored_hits() == 4)
            # Each event in Russian, and a new event beside them.
            feed_server.routes["/interfax.xml"] = Feed(rss("interfax", [
                ("i1", STORM_RU, "https://interfax.example/1"),
                ("i2", DRONE_RU, "https://interfax.example/2"),
                ("i3", BTC_RU, "https://interfax.example/3"),
                ("i4", COURT, "https://interfax.example/4")]))
            daemon.wait_for("the new event's alert",
                            lambda: len(stories(documents(hook, "alert"))) == 4, timeout=30)
            assert daemon.stored_hits() == 8
            alerted = stories(documents(hook, "alert"))
            assert sorted(t for s in alerted for t in s) == sorted(
                [STORM[0], DRONE[0], BTC[0], COURT[0]])

            # The digest: three stories, three entries, their new reports grouped.
            r = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config),
                                "digest"], capture_output=True, text=True, timeout=60,
                               env=env, cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            [digest] = documents(hook, "digest")
            entries = sorted(sorted(s) for s in stories([digest]))
            assert entries == sorted([sorted(["Oil: " + STORM[0], STORM_RU[0]]),
                                      [DRONE_RU[0]], [BTC_RU[0]]])
            assert digest["subject"].startswith("[news-monitor] energy: 3 new stories")
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
