"""The web view over a real uvicorn server on a loopback port and a real store,
for tests/test_web*.py: a store filled with known hits (a hostile title among
them), the configuration that names it, and a small HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.models import Evidence, FeedState, Item, Match, NewItem, Severity
from monitor.rules import shipped_rules_dir
from monitor.store import Store

FEED = "https://outlet.example/rss"
HOSTILE_TITLE = '<script>alert("owned")</script><img src=x onerror=alert(1)> CPC halts loading'
HOSTILE_LINK = "javascript:alert(document.cookie)"
RULES = {"cpc-disruption": ("v1", Severity.HIGH), "btc-diversion": ("v1", Severity.MEDIUM),
         "eaeu-grain-ban": ("v1", Severity.HIGH)}

# (guid, rule, title, summary): the newest last.
ENTRIES = [
    ("g-old", "eaeu-grain-ban", "EAEU extends the grain export ban", "Wheat exports stay banned."),
    ("g-btc", "btc-diversion", "Kazakh oil diverted to the BTC pipeline",
     "Shipments via Baku grow."),
    ("g-ru", "cpc-disruption", "КТК приостановил отгрузку нефти",
     "Каспийский трубопроводный консорциум остановил погрузку танкеров после шторма."),
    ("g-hostile", "cpc-disruption", HOSTILE_TITLE, "Caspian Pipeline Consortium halts loadings."),
    ("g-new", "cpc-disruption", "Caspian Pipeline Consortium halts loadings after storm",
     "Moorings damaged near Novorossiysk; tanker loading suspended."),
]


def _evidence(title: str, summary: str) -> tuple[Evidence, ...]:
    """One evidence span per field: the first word of the title and of the summary."""
    out = []
    for fieldname, text in (("title", title), ("summary", summary)):
        word = text.split()[0]
        start = text.index(word)
        out.append(Evidence(fieldname, word, word, start, start + len(word), 95.0))
    return tuple(out)


def fill(url: str) -> None:
    store = Store.open(url)
    store.sync_feeds([(FEED, "Outlet")])
    store.register_desks(["energy", "grain"], datetime.now(UTC) - timedelta(days=30))
    now = datetime.now(UTC) - timedelta(hours=len(ENTRIES))
    for n, (guid, rule, title, summary) in enumerate(ENTRIES):
        when = now + timedelta(hours=n)
        link = HOSTILE_LINK if guid == "g-hostile" else f"https://outlet.example/{guid}"
        item = Item(FEED, guid, title, summary, link, when, "ru" if guid == "g-ru" else "en",
                    f"fp-{guid}")
        store.commit_poll(FeedState(FEED, last_polled=when, last_status="200"),
                          [NewItem(item, (Match(rule, 90.0 + n, _evidence(title, summary)),))],
                          RULES, when)
    store.close()


def write_config(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "monitor.toml"
    path.write_text(
        f'[storage]\nurl = "{url}"\n[rules]\ndir = "{shipped_rules_dir()}"\n'
        f'[[feeds]]\nurl = "{FEED}"\nname = "Outlet"\n'
        '[[desks]]\nname = "energy"\nrules = ["cpc-disruption", "btc-diversion"]\n'
        '[[desks]]\nname = "grain"\nrules = ["eaeu-grain-ban"]\n' + extra,
        encoding="utf-8")
    return path


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: str

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Client:
    base: str
    auth: str | None = None  # an Authorization header
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={**self.headers, **(headers or {})})
        if self.auth:
            req.add_header("Authorization", self.auth)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as r:
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()},
                              r.read().decode())
        except urllib.error.HTTPError as e:
            return Answer(e.code, {k.lower(): v for k, v in e.headers.items()},
                          e.read().decode())

    def get(self, path: str, **kw: object) -> Answer:
        return self.request("GET", path, **kw)  # type: ignore[arg-type]

    def post_form(self, path: str, form: Mapping[str, str],
                  headers: Mapping[str, str] | None = None) -> Answer:
        from urllib.parse import urlencode

        return self.request("POST", path, urlencode(form).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded",
                             "Origin": self.base, **(headers or {})})

    def post_json(self, path: str, data: object,
                  headers: Mapping[str, str] | None = None) -> Answer:
        return self.request("POST", path, json.dumps(data).encode(),
                            {"Content-Type": "application/json", **(headers or {})})


@contextmanager
def serving(config: Path, users: Mapping[str, str] | None = None) -> Iterator[Client]:
    """The web view of ``config`` on a free loopback port, stopped after."""
    from monitor.config import load_settings
    from monitor.rules import load_rules
    from monitor.web import WebServer
    from monitor.web.app import View

    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    view = View(settings, load_rules(settings.rules_dir), store)
    server = WebServer(lambda: view, "127.0.0.1", 0, users=users)
    server.start()
    try:
        yield Client(f"http://127.0.0.1:{server.port}")
    finally:
        server.stop()
        store.close()
