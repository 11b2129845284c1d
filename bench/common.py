"""What the bench scripts share: deterministic feeds, a loopback feed server,
whole-process timing, and the summaries they print.

Library module for ``bench/bench_*.py``; run as a script it is the feed server::

    .venv/bin/python bench/common.py serve --feeds 500     # prints "READY <port>"

The feeds. Feed ``i`` at epoch ``e`` is an RSS 2.0 document of 20 items (about
16 KB), items ``e .. e+19`` of that feed's endless, deterministic sequence, the
newest first: advancing a feed's epoch by one publishes one new item and
drops the oldest, as a real feed scrolls. Titles (~75 characters) and
summaries (~400 characters of CDATA ``<p>`` prose) are news-like English; about
6 % of items carry a story one of the four shipped rules should catch, and some
more only mention a rule's names without its event (near misses).

The server (``ThreadingHTTPServer`` on 127.0.0.1 only, in a child process so
its CPU is its own) serves ``/feed/<i>.xml`` with ETag and Last-Modified and
answers a matching conditional GET with 304. Control paths: ``/stats`` (JSON
counts of 200/304/404 answers), ``/reset`` (zero them), ``/advance?n=K``
(publish one new item in the next K feeds, round robin). TCP_NODELAY is set:
without it every 200 waits ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib.util
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the checkout's monitor, installed or not
    sys.path.insert(0, str(REPO))
ITEMS = 20
SEED = "news-monitor-poll-bench-v1"
_BASE_DATE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# -- text ----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Filler stays clear of the rules' words (no Central Asian places, grains, export
# controls), so that hits come from the planted stories.
_PLACES = _words("""Lisbon Porto Madrid Seville Lyon Bordeaux Ghent Utrecht Warsaw Gdansk Riga
Vilnius Tallinn Helsinki Oslo Bergen Rotterdam Hamburg Antwerp Genoa Naples Piraeus Dubai
Doha Muscat Mumbai Chennai Dhaka Jakarta Manila Busan Osaka Perth Durban Lagos Mombasa Santos
Houston Vancouver Toronto""")
_ACTORS = _words("""ministry parliament cabinet utility city_council insurer lenders analysts
unions commission airline carmaker steelmaker chipmaker retailer hospital_group""")
_GOODS = _words("""steel copper aluminium cotton coffee cement timber electricity cars chips
textiles software furniture bicycles""")
_VERBS = _words("""announced confirmed proposed approved reviewed extended raised lowered
published expanded renewed postponed welcomed discussed outlined""")
_NOUNS = _words("""contracts budgets forecasts prices payments investments subsidies reforms
targets wages pensions""")
_ADJ = _words("""record seasonal gradual modest significant renewed quarterly annual regional
national""")
_LINKS = _words("amid following despite after ahead_of while")
_REASONS = ["weaker demand", "higher freight costs", "a court ruling", "new inspection rules",
            "currency swings", "talks with buyers", "a change in fees", "labour talks",
            "a budget review", "strong harvests", "maintenance plans", "investor pressure"]
_DAYS = _words("Monday Tuesday Wednesday Thursday Friday")

# Stories the shipped rules should catch (rule id, text), and near misses that
# name a rule's topic without its event: both make the matcher work for real.
_STORIES = [
    ("cpc-disruption", "Caspian Pipeline Consortium halts oil loadings at its Novorossiysk "
                       "terminal after storm damage to a mooring"),
    ("cpc-disruption", "CPC suspends crude loadings at Novorossiysk after a drone attack on "
                       "the terminal"),
    ("btc-diversion", "Kazakhstan to ship more Kazakh crude through the Baku-Tbilisi-Ceyhan "
                      "pipeline, KazMunayGas says"),
    ("eaeu-grain-ban", "Kazakhstan extends its wheat export ban to neighbouring EAEU states "
                       "for six months"),
    ("sanctioned-transit", "dual-use goods re-exported to Russia through Kazakhstan, customs "
                           "data show"),
    ("sanctioned-transit", "parallel imports of sanctioned electronics reach Russia via "
                           "Kyrgyzstan"),
]
_NEAR_MISSES = [
    "The CPC held its annual congress in Beijing",
    "Bitcoin BTC price rallies as crypto traders return",
    "Caspian sturgeon numbers recover, scientists say",
    "wheat prices steady on the Chicago exchange",
]


def _w(word: str) -> str:
    return word.replace("_", " ")


def _sentence(rng: random.Random) -> str:
    s = (f"The {rng.choice(_PLACES)} {_w(rng.choice(_ACTORS))} {rng.choice(_VERBS)} "
         f"{rng.choice(_ADJ)} {rng.choice(_GOODS)} {rng.choice(_NOUNS)} "
         f"{_w(rng.choice(_LINKS))} {rng.choice(_REASONS)}")
    if rng.random() < 0.5:
        return s + f", officials in {rng.choice(_PLACES)} said on {rng.choice(_DAYS)}."
    return s + f", with {rng.randint(2, 40)}% more {rng.choice(_NOUNS)} expected this year."


@dataclass(frozen=True, slots=True)
class GenItem:
    """One generated entry; ``rule`` names the shipped rule its story is for, if any."""

    guid: str
    title: str
    summary: str
    link: str
    published: datetime
    rule: str | None


def make_item(feed: int, serial: int) -> GenItem:
    """Entry number ``serial`` of feed ``feed``: the same in every process and run."""
    rng = random.Random(f"{SEED}:{feed}:{serial}")
    title = (f"{rng.choice(_PLACES)} {_w(rng.choice(_ACTORS))} {rng.choice(_VERBS)} "
             f"{rng.choice(_GOODS)} {rng.choice(_NOUNS)} {_w(rng.choice(_LINKS))} "
             f"{rng.choice(_REASONS)}")
    summary = _sentence(rng)
    while len(summary) < 360:
        summary += " " + _sentence(rng)
    rule = None
    roll = rng.random()
    if roll < 0.06:
        rule, story = rng.choice(_STORIES)
        title = story[:1].upper() + story[1:]
        summary = f"{story[:1].upper() + story[1:]}. {summary}"
    elif roll < 0.10:
        summary = f"{rng.choice(_NEAR_MISSES)}. {summary}"
    if len(summary) > 440:
        summary = summary[:440].rsplit(" ", 1)[0].rstrip(",") + "."
    published = _BASE_DATE - timedelta(hours=feed % 24) + timedelta(minutes=37 * serial)
    slug = "-".join(title.lower().split()[:6]).replace(",", "")
    return GenItem(guid=f"urn:nm-bench:{feed}:{serial}",
                   title=title, summary=summary,
                   link=f"https://news.example.org/{feed}/{serial}/{slug}",
                   published=published, rule=rule)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def feed_xml(feed: int, epoch: int = 0, items: int = ITEMS) -> bytes:
    """Feed ``feed`` as published at ``epoch``: entries epoch .. epoch+items-1, newest first."""
    entries = [make_item(feed, k) for k in range(epoch + items - 1, epoch - 1, -1)]
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
           f"<title>Bench Wire {feed}</title>\n<link>https://news.example.org/{feed}/</link>\n"
           f"<description>Generated news feed {feed}</description>\n<language>en</language>\n"]
    for it in entries:
        out.append(
            f"<item>\n  <title>{_esc(it.title)}</title>\n  <link>{_esc(it.link)}</link>\n"
            f"  <description><![CDATA[<p>{it.summary}</p>]]></description>\n"
            f'  <guid isPermaLink="false">{it.guid}</guid>\n'
            f"  <pubDate>{email.utils.format_datetime(it.published, usegmt=True)}</pubDate>\n"
            "</item>\n")
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode()


# -- the feed server -----------------------------------------------------------------


class _Site:
    """Rendered feeds and answer counters, shared by the handler threads."""

    def __init__(self, feeds: int, items: int) -> None:
        self.items = items
        self.lock = threading.Lock()
        self.counts = {"200": 0, "304": 0, "404": 0}
        self.epochs = [0] * feeds
        self.cursor = 0  # the next feed /advance publishes in
        self.docs = [self._render(i) for i in range(feeds)]

    def _render(self, i: int) -> tuple[bytes, str, str]:
        epoch = self.epochs[i]
        modified = email.utils.formatdate(_BASE_DATE.timestamp() + 60 * epoch, usegmt=True)
        return feed_xml(i, epoch, self.items), f'"f{i}-e{epoch}"', modified

    def advance(self, n: int) -> None:
        for _ in range(n):
            i = self.cursor
            self.cursor = (self.cursor + 1) % len(self.epochs)
            self.epochs[i] += 1
            doc = self._render(i)
            with self.lock:
                self.docs[i] = doc


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each response waits ~40 ms for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = (),
                content_type: str = "application/rss+xml; charset=utf-8") -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def _json(self, data: object) -> None:
        self._answer(200, json.dumps(data).encode(), content_type="application/json")

    def do_GET(self) -> None:
        site = self.server.site
        path, _, query = self.path.partition("?")
        if path == "/stats":
            with site.lock:
                return self._json(dict(site.counts))
        if path == "/reset":
            with site.lock:
                site.counts = dict.fromkeys(site.counts, 0)
            return self._json({})
        if path == "/advance":
            site.advance(int(query.partition("n=")[2] or 1))
            return self._json({"cursor": site.cursor})
        doc = None
        if path.startswith("/feed/") and path.endswith(".xml"):
            with contextlib.suppress(ValueError, IndexError):
                doc = site.docs[int(path[6:-4])]
        if doc is None:
            with site.lock:
                site.counts["404"] += 1
            return self._answer(404, b"not found\n", content_type="text/plain")
        body, etag, modified = doc
        headers = (("ETag", etag), ("Last-Modified", modified))
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            fresh = etag in (t.strip() for t in inm.split(","))
        else:
            fresh = self.headers.get("If-Modified-Since") == modified
        status = 304 if fresh else 200
        with site.lock:
            site.counts[str(status)] += 1
        self._answer(status, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default 5 drops connects when 32+ arrive at once
    site: _Site


def serve(feeds: int, items: int = ITEMS, port: int = 0) -> None:
    """Run the feed server until SIGTERM; print ``READY <port>`` when listening."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.site = _Site(feeds, items)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


class FeedServer:
    """A running feed server child process (see the module docstring)."""

    def __init__(self, feeds: int, items: int = ITEMS) -> None:
        self.feeds = feeds
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "serve", "--feeds", str(feeds), "--items", str(items)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.stop()
            raise RuntimeError(f"the feed server did not start: {line}")
        self.base = f"http://127.0.0.1:{line[1]}"

    def url(self, i: int) -> str:
        return f"{self.base}/feed/{i}.xml"

    def _get(self, path: str) -> dict[str, int]:
        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, int]:
        return self._get("/stats")

    def reset(self) -> None:
        self._get("/reset")

    def advance(self, n: int) -> None:
        self._get(f"/advance?n={n}")

    def expect(self, what: str, **counts: int) -> None:
        """Fail loudly unless the server answered exactly these counts since the reset."""
        got = self.stats()
        want = {"200": counts.get("ok", 0), "304": counts.get("not_modified", 0), "404": 0}
        if got != want:
            raise AssertionError(f"{what}: the server answered {got}, expected {want}")

    def stop(self) -> None:
        self.proc.terminate()  # our own child, by its PID
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- processes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One whole process, as ``wait4`` and a sampler saw it.

    ``cpu`` counts the process and the children it waited for (its workers);
    ``peak_mib`` is the peak RSS of the largest single process of the tree
    (``ru_maxrss``); ``tree_mib`` the peak of the sum of the proportional set
    sizes (PSS: shared pages divided among their sharers) of the process and
    all its descendants, sampled every 50 ms: what the whole poll costs in RAM.
    """

    wall: float
    cpu: float
    peak_mib: float
    tree_mib: float
    status: int
    out: str
    err: str


class TreeSampler(threading.Thread):
    """Samples the total PSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = tree_pss_mib(self.pid)
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak


def start_daemon(work: Path, server: FeedServer, *, tick: str, extra: str = "",
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``news-monitor run`` on a fresh SQLite store in ``work``, polling every feed of
    ``server`` every second (``extra``: more configuration, such as a desk); its
    output goes to ``work/daemon.log``."""
    config = write_config(work / "monitor.toml", [server.url(i) for i in range(server.feeds)],
                          db_url=f"sqlite:///{work}/monitor.db", interval="1s", extra=extra)
    with (work / "daemon.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(nm_command(config, "run", "--tick", tick),
                                env=env or nm_env(), stdout=log, stderr=subprocess.STDOUT)


def check_running(daemon: subprocess.Popen[bytes], work: Path) -> None:
    """Raise, with the end of its log, if the daemon :func:`start_daemon` started ended."""
    if daemon.poll() is not None:
        raise RuntimeError(f"the daemon exited {daemon.returncode}:\n"
                           + (work / "daemon.log").read_text()[-3000:])


def stop_daemon(daemon: subprocess.Popen[bytes]) -> float:
    """SIGTERM a daemon this script started (by its pid), wait for it (killed after
    30 s); its peak RSS in MiB while it still ran (0 when it had already ended)."""
    _, peak = rss_mib(daemon.pid) if daemon.poll() is None else (0.0, 0.0)
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    return peak


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in
                             Path(f"/proc/{p}/task/{task}/children").read_text().split()]
    return out


def tree_pss_mib(pid: int) -> float:
    """The summed PSS of ``pid`` and its descendants, MiB (0 once it is gone)."""
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total / 1024


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None,
        timeout: float = 1800.0) -> Run:
    """Run ``cmd`` to its end, timed whole (see :class:`Run`); raise unless it exits 0."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            tree = sampler.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        out.seek(0)
        err.seek(0)
        result = Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                     peak_mib=usage.ru_maxrss / 1024, tree_mib=tree, status=proc.returncode,
                     out=out.read().decode(errors="replace"),
                     err=err.read().decode(errors="replace"))
    if result.status != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.status}:\n{result.err[-3000:]}")
    return result


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a running process, MiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def nm_env() -> dict[str, str]:
    """The environment for a ``news-monitor`` child: this checkout on the path,
    and Python's bytecode cache on (see :func:`compile_checkout`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.pop("NEWS_MONITOR_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_checkout() -> None:
    """Byte-compile ``monitor/`` (into ``__pycache__``, which git ignores).

    An installed package has its bytecode compiled by pip, as reader's has;
    a checkout run with ``PYTHONDONTWRITEBYTECODE`` set would instead compile
    every module at every start (~0.05 s), which no user pays.
    """
    import compileall

    compileall.compile_dir(REPO / "monitor", quiet=1)


def nm_command(config: Path, *args: str, python: str = sys.executable) -> list[str]:
    """``news-monitor --config CONFIG ARGS`` as this checkout runs it."""
    return [python, "-m", "monitor", "--config", str(config), *args]



def module_at(rev: str, path: str, name: str) -> types.ModuleType:
    """The checkout's module ``path`` (``monitor/match.py``) as it is at ``rev``,
    imported as ``name``: figures of this checkout beside a revision's, in one process."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(name, f.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    Path(f.name).unlink()
    return module

def write_config(path: Path, urls: Sequence[str], *, db_url: str, concurrency: int = 32,
                 per_host: int = 32, interval: str = "15m",
                 rules_dir: Path = REPO / "rules", extra: str = "") -> Path:
    """A news-monitor config polling ``urls``, storing in ``db_url``."""
    lines = [f'[storage]\nurl = "{db_url}"\n', f'[rules]\ndir = "{rules_dir}"\n',
             f'[poll]\ninterval = "{interval}"\nconcurrency = {concurrency}\n'
             f'per_host = {per_host}\ntimeout = "60s"\n', extra]
    lines += [f'[[feeds]]\nurl = "{u}"\n' for u in urls]
    path.write_text("\n".join(lines))
    return path


# -- figures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stat:
    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 2) -> str:
        return (f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f}, "
                f"{self.runs} runs)")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line about this machine and interpreter, for the record."""
    import platform

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"{platform.platform()}")


def save_json(path: str | None, data: object) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the bench feed server (127.0.0.1 only)")
    ap.add_argument("command", choices=["serve"])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--items", type=int, default=ITEMS)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    serve(a.feeds, a.items, a.port)
