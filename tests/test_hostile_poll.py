"""A poll over good feeds mixed with every hostile kind: the good ones are stored whole,
each hostile one costs only itself, memory stays bounded, nothing local leaks in."""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import (
    Drip,
    Feed,
    FeedServer,
    GzipBomb,
    Huge,
    NotHttp,
    Redirect,
    Status,
    empty,
    feed_doc,
    html_page,
    random_bytes,
    wrong_charset,
)
from procenv import cli_env

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process

SHARED = Path(__file__).resolve().parents[2] / "shared"
SECRET = "NM-SECRET-CANARY-31337"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>laughs</title>
<item><title>&lol9;</title><guid>lol-1</guid><description>&lol9;</description></item>
</channel></rss>"""


def xxe(path: Path) -> bytes:
    return (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>'
            '<rss version="2.0"><channel><title>xxe</title><item><title>Leak &xxe;</title>'
            '<guid>xxe-1</guid><description>&xxe;</description></item></channel></rss>'
            ).encode()


def test_poll_over_hostile_feeds(feed_server: FeedServer, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    good = {f"/good{i}.xml": Feed(feed_doc(i, 20)) for i in range(4)}
    hostile = {
        "/bomb.xml": GzipBomb(expanded=2 << 30),
        "/huge.xml": Huge(size=1 << 30),
        "/drip.xml": Drip(interval=0.5),
        "/loop.xml": Redirect("/loop.xml"),
        "/page.html": html_page(),
        "/random.bin": random_bytes(),
        "/empty.xml": empty(),
        "/charset.xml": wrong_charset(),
        "/laughs.xml": Feed(BILLION_LAUGHS),
        "/xxe.xml": Feed(xxe(secret_file)),
        "/forbidden.xml": Status(403),
        "/error.xml": Status(500),
        "/busy.xml": Status(429, retry_after="120"),
        "/nothttp.xml": NotHttp(),
    }
    feed_server.routes.update(good)
    feed_server.routes.update(hostile)
    urls = [feed_server.url(p) for p in [*good, *hostile]]
    urls += [f"https://127.0.0.1:{feed_server.port}/good0.xml",  # TLS to a plain-HTTP server
             "http://no-such-host.invalid/feed.xml"]  # DNS failure, nothing leaves
    corpus = SHARED / "corpus" / "feedparser-tests"
    if corpus.is_dir():  # feedparser's own test feeds, by path
        urls += [str(p) for p in sorted(corpus.rglob("*.xml"))[:300]]
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        '[poll]\ntimeout = "3s"\nmax_bytes = 4194304\nconcurrency = 16\n'
        + "".join(f"[[feeds]]\nurl = {json.dumps(u)}\n" for u in urls))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    env = cli_env()
    result = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll"],
                            capture_output=True, text=True, timeout=300, env=env)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert result.returncode == 0, result.stderr
    assert max(before / 1024, peak_mib) < 500

    status = json.loads(subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status", "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env, check=True).stdout)
    feeds = {f["url"]: f for f in status["feeds"]}
    for path in good:  # stored whole
        f = feeds[feed_server.url(path)]
        assert (f["items"], f["error"]) == (20, None), f
    expected = {"/bomb.xml": "too_large", "/huge.xml": "too_large", "/drip.xml": "timeout",
                "/loop.xml": "redirect_loop", "/forbidden.xml": 403, "/error.xml": 500,
                "/busy.xml": 429, "/nothttp.xml": "connection"}
    for path, word in expected.items():
        f = feeds[feed_server.url(path)]
        assert f["last_status"] == word and f["error"], f
    for path in ("/page.html", "/random.bin", "/empty.xml"):
        f = feeds[feed_server.url(path)]
        assert f["error"] and "not a feed" in f["error"], f
    assert feeds[f"https://127.0.0.1:{feed_server.port}/good0.xml"]["last_status"] == "tls"
    assert feeds["http://no-such-host.invalid/feed.xml"]["last_status"] == "dns"
    assert feeds[feed_server.url("/charset.xml")]["error"] is None

    db = sqlite3.connect(tmp_path / "monitor.db")
    texts = db.execute("SELECT title || ' ' || summary FROM items").fetchall()
    assert not any(SECRET in t for (t,) in texts)  # XXE never read the file
    assert max(len(t) for (t,) in texts) < 20_000  # no entity expansion
    if corpus.is_dir():
        corpus_feeds = [f for u, f in feeds.items() if u.startswith(str(corpus))]
        assert all(f["last_status"] == 200 for f in corpus_feeds)
