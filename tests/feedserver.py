"""A real HTTP server on 127.0.0.1 for tests and benchmarks: feeds, and feeds that misbehave.

``FeedServer`` runs the stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive) on
a random loopback port in a daemon thread. It serves a mutable routing table,
``server.routes``: path -> a :class:`Route` that writes the whole response::

    with FeedServer() as server:
        server.routes["/feed.xml"] = Feed(b"<rss>...</rss>")
        server.routes["/gone"] = Status(410)
        server.routes["/loop"] = Redirect("/loop")
        fetch(server.url("/feed.xml"))
        assert server.statuses("/feed.xml") == [200]

Every request is logged (path, method, headers, status, body bytes sent), and
the server tracks how many requests are in flight at once (``peak_in_flight``).
Bodies that would be huge (``Huge``, ``GzipBomb``) are generated while sent,
never held in memory. Unknown paths get 404.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import random
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

RSS = "application/rss+xml; charset=utf-8"

_BLOCK = 64 * 1024


def rss(title: str = "Test feed", items: int = 3, *, seed: str = "") -> bytes:
    """A small valid RSS 2.0 document (deterministic for a given seed)."""
    entries = "".join(
        f"<item><title>{title} item {i}{seed}</title><link>https://example.org/{i}{seed}</link>"
        f"<guid>urn:test:{i}{seed}</guid><description>Item {i} of {title}.</description>"
        f"<pubDate>Mon, 01 Jan 2024 00:{i % 60:02d}:00 GMT</pubDate></item>"
        for i in range(items)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>https://example.org/</link>"
            f"<description>{title}</description>{entries}</channel></rss>").encode()


#: The CPC events of :func:`feed_doc`, in turn: entries 3, 13, 23 and 33 of a feed
#: are four different stories (each alerted once: a story is alerted once per desk).
CPC_EVENTS = (
    ("CPC halts oil loadings at Novorossiysk terminal after storm",
     "The Caspian Pipeline Consortium suspended tanker loadings after a storm damaged a "
     "single point mooring."),
    ("Drone attack hits CPC pumping station in Krasnodar region",
     "Drones struck the Kropotkinskaya pumping station of the Caspian Pipeline Consortium, "
     "cutting oil flows."),
    ("Russian court orders CPC to suspend operations for 30 days",
     "A court in Novorossiysk ordered the Caspian Pipeline Consortium to halt oil loadings "
     "over environmental violations."),
    ("Mines found near CPC terminal halt some tanker loadings",
     "The Caspian Pipeline Consortium suspended loadings at two moorings while World War Two "
     "ordnance was cleared."),
)


def _outlet_entry(feed: int, n: int) -> str:
    """One RSS item; every tenth is a story the CPC rule should catch."""
    if n % 10 == 3:
        event, summary = CPC_EVENTS[(n // 10) % len(CPC_EVENTS)]
        title = f"{event} (report {feed}-{n})"
    else:
        title = f"Regional market update {feed}-{n}: currencies and equities"
        summary = f"Traders watched the tenge and local shares in session {n}."
    date = email.utils.formatdate(1_767_225_600 + feed * 86_400 + n * 600, usegmt=True)
    return (f"<item><title>{title}</title><link>https://outlet{feed}.example/{n}</link>"
            f"<guid>urn:outlet{feed}:{n}</guid><description>{summary}</description>"
            f"<pubDate>{date}</pubDate></item>")


def feed_doc(feed: int, count: int, start: int = 0) -> bytes:
    """Outlet ``feed``'s RSS with entries ``start`` to ``start + count - 1``: every
    tenth (3, 13, ...) a story the shipped CPC rule catches."""
    items = "".join(_outlet_entry(feed, n) for n in range(start, start + count))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Outlet {feed}</title><link>https://outlet{feed}.example/</link>"
            f"<description>Outlet {feed}</description><language>en</language>{items}"
            f"</channel></rss>").encode()


@dataclass
class LogEntry:
    """One request as the server saw it; ``sent`` counts body bytes written so far."""

    path: str
    method: str
    headers: dict[str, str]  # keys lowercased
    status: int | None = None
    sent: int = 0


# -- routes -------------------------------------------------------------------


class Route:
    """How one path answers. Subclasses write the whole response in ``serve``."""

    def serve(self, h: _Handler) -> None:
        raise NotImplementedError


@dataclass
class Feed(Route):
    """A static body with ETag + Last-Modified, answering 304 to a matching conditional GET.

    ``encoding`` compresses the body on the wire (``gzip``, ``deflate`` = zlib,
    ``raw-deflate`` = deflate without the zlib wrapper, as some servers send);
    ``delay`` waits before answering (to hold requests in flight).
    """

    body: bytes = field(default_factory=rss)
    content_type: str = RSS
    status: int = 200
    conditional: bool = True
    mtime: float = field(default_factory=lambda: float(int(time.time()) - 60))
    encoding: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified(self) -> str:
        return email.utils.formatdate(self.mtime, usegmt=True)

    def serve(self, h: _Handler) -> None:
        if self.delay and h.server.stopping.wait(self.delay):
            return
        headers = dict(self.headers)
        if self.conditional:
            headers["ETag"] = self.etag
            headers["Last-Modified"] = self.last_modified
            if self._not_modified(h):
                h.respond(304, b"", headers)
                return
        body = self.body
        if self.encoding is not None:
            body = _compress(body, self.encoding)
            headers["Content-Encoding"] = "deflate" if "deflate" in self.encoding else "gzip"
        headers.setdefault("Content-Type", self.content_type)
        h.respond(self.status, body, headers)

    def _not_modified(self, h: _Handler) -> bool:
        inm = h.headers.get("If-None-Match")
        if inm is not None:  # takes precedence over If-Modified-Since (RFC 9110 13.2.2)
            tags = [t.strip() for t in inm.split(",")]
            return "*" in tags or self.etag in tags
        ims = h.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
        return int(self.mtime) <= since


@dataclass
class Status(Route):
    """A fixed status (404, 410, 429, 500, 503...), optionally with Retry-After."""

    status: int
    retry_after: str | None = None
    body: bytes = b"error\n"
    content_type: str = "text/plain"

    def serve(self, h: _Handler) -> None:
        headers = {"Content-Type": self.content_type}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        h.respond(self.status, self.body, headers)


@dataclass
class Redirect(Route):
    """A redirect to ``location`` (relative or absolute); chain routes for chains and loops."""

    location: str
    status: int = 301

    def serve(self, h: _Handler) -> None:
        h.respond(self.status, b"", {"Location": self.location})


@dataclass
class Drip(Route):
    """Headers at once, then one byte every ``interval`` seconds, forever (or ``limit`` bytes)."""

    interval: float = 1.0
    limit: int | None = None
    content_type: str = RSS

    def serve(self, h: _Handler) -> None:
        h.start(200, {"Content-Type": self.content_type}, length=None)
        n = 0
        while self.limit is None or n < self.limit:
            if not h.write(b" "):
                return
            n += 1
            if h.server.stopping.wait(self.interval):
                return


@dataclass
class Huge(Route):
    """``size`` bytes of generated filler, streamed; with or without a Content-Length."""

    size: int
    content_length: bool = False
    content_type: str = RSS

    def serve(self, h: _Handler) -> None:
        h.start(200, {"Content-Type": self.content_type},
                length=self.size if self.content_length else None)
        block = b"<!-- filler -->\n" * (_BLOCK // 16)
        left = self.size
        while left > 0:
            if not h.write(block[: min(left, len(block))]):
                return
            left -= len(block)


@dataclass
class GzipBomb(Route):
    """``Content-Encoding: gzip`` that expands to ``expanded`` zero bytes (about 1000:1).

    The compressed stream is one segment repeated: after a full flush, deflate
    forgets its history, so each MiB of zeros compresses to the same bytes.
    """

    expanded: int = 1 << 30
    content_type: str = RSS

    def serve(self, h: _Handler) -> None:
        unit = 1 << 20
        segment, end = _bomb_parts(unit)
        count = max(1, self.expanded // unit)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        length = len(header) + count * len(segment) + len(end) + 8
        h.start(200, {"Content-Type": self.content_type, "Content-Encoding": "gzip"},
                length=length)
        if not h.write(header):
            return
        batch = segment * max(1, _BLOCK // len(segment))  # fewer, bigger writes
        per_batch = len(batch) // len(segment)
        left = count
        while left > 0:
            n = min(left, per_batch)
            if not h.write(batch[: n * len(segment)]):
                return
            left -= n
        crc = 0
        zeros = bytes(unit)
        for _ in range(count):  # only reached by a client that reads it all
            crc = zlib.crc32(zeros, crc)
        h.write(end + struct.pack("<II", crc, (count * unit) & 0xFFFFFFFF))


@dataclass
class NotHttp(Route):
    """Raw bytes instead of an HTTP response, then the connection closes."""

    data: bytes = b"\x00\xffthis is no HTTP\r\n\r\n"

    def serve(self, h: _Handler) -> None:
        h.log.status = 0
        h.close_connection = True
        h.write(self.data)


def html_page() -> Feed:
    """An HTML page where a feed was expected."""
    return Feed(b"<!doctype html><html><head><title>Home</title></head>"
                b"<body><p>Not a feed</p></body></html>", content_type="text/html; charset=utf-8")


def random_bytes(size: int = 4096, seed: int = 0) -> Feed:
    """Random bytes served as a feed."""
    return Feed(random.Random(seed).randbytes(size), content_type="application/octet-stream")


def empty() -> Feed:
    """A 200 with an empty body."""
    return Feed(b"")


def wrong_charset(text: str = "Привет, мир") -> Feed:
    """A feed encoded in windows-1251 whose header claims UTF-8."""
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{text}</title>'
            f"</channel></rss>").encode("cp1251")
    return Feed(body, content_type="application/rss+xml; charset=utf-8")


# -- server -------------------------------------------------------------------


class FeedServer:
    """The running server: routes, request log and in-flight counters.

    Use as a context manager (or call :meth:`start` / :meth:`stop`).
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[LogEntry] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FeedServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="feedserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.stopping.set()  # wakes dripping and delayed handlers
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # the log

    def requests(self, path: str | None = None) -> list[LogEntry]:
        with self._lock:
            return [e for e in self.log if path is None or e.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def statuses(self, path: str | None = None) -> list[int | None]:
        return [e.status for e in self.requests(path)]

    def clear(self) -> None:
        """Forget the log and the in-flight peak (routes stay)."""
        with self._lock:
            self.log.clear()
            self.peak_in_flight = self.in_flight

    def _enter(self, entry: LogEntry) -> None:
        with self._lock:
            self.log.append(entry)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # the default 5 drops connects when a poll opens 32 at once
    owner: FeedServer

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is normal
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        # Idle keep-alive threads sit in readline(); shutting their sockets ends them.
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate send()s; with Nagle on, the body waits
    # for the client's delayed ACK (~40 ms a response, see shared/bench/RESULTS.md).
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection does not keep its thread forever
    server: _Server
    log: LogEntry

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):  # the client may be gone
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the request log is the record

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        self.log = LogEntry(path, self.command, {k.lower(): v for k, v in self.headers.items()})
        owner._enter(self.log)
        try:
            route = owner.routes.get(path)
            if route is None:
                self.respond(404, b"not found\n", {"Content-Type": "text/plain"})
            else:
                route.serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            owner._leave()

    # helpers for routes

    def start(self, status: int, headers: dict[str, str], *, length: int | None) -> None:
        """Send the status line and headers; ``length=None``: the body ends at close."""
        self.log.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def respond(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """A whole response with a known body (none for 304)."""
        if status == 304:
            self.log.status = status
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            return
        self.start(status, headers, length=len(body))
        self.write(body)

    def write(self, data: bytes) -> bool:
        """Write body bytes; False once the client has gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        self.log.sent += len(data)
        return True


def _compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        import gzip

        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return c.compress(body) + c.flush()
    raise ValueError(f"unknown encoding {encoding!r}")


_bomb_cache: dict[int, tuple[bytes, bytes]] = {}


def _bomb_parts(unit: int) -> tuple[bytes, bytes]:
    """(one full-flushed raw-deflate segment of ``unit`` zeros, the closing block)."""
    if unit not in _bomb_cache:
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        zeros = bytes(unit)
        first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
        second = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
        if first != second:  # repeating it would not be a valid stream
            raise AssertionError("deflate segments do not repeat")
        _bomb_cache[unit] = (first, c.flush(zlib.Z_FINISH))
    return _bomb_cache[unit]

