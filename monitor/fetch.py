"""The fetch stage: bytes from feed URLs, concurrently, within bounds.

This module owns aiohttp (imported lazily, only when an http(s) feed is
fetched) and turns every per-feed failure into a :class:`~monitor.models.FetchResult`
carrying an error word, never an exception: the pipeline decides what a
failure means (back-off, disabling a feed on 410...).

What a hostile or broken feed can cost is bounded per feed (the ``[poll]``
keys, :class:`monitor.settings.PollConfig`):

* time: one total deadline per fetch (connect + headers + whole body, across
  redirects), so a server dripping a byte every few seconds cannot hold a slot;
* memory: bodies are streamed and the *decoded* size is capped; gzip/deflate are
  decoded here, incrementally and bounded, never by aiohttp (a 10 MB gzip bomb
  never expands past the cap);
* concurrency: a global bound and a smaller per-host one, taken *before* the
  deadline starts, so queued feeds do not time out while they wait.

Error words (``FetchResult.error_kind``): ``timeout``, ``dns``, ``tls``,
``connection``, ``too_large``, ``redirect_loop``, ``http`` (a 4xx/5xx response,
``status`` set), ``file`` (an unreadable local file), ``invalid_url``, and
``encoding`` (a corrupt or unsupported Content-Encoding).

Article pages (``full_text``, :func:`fetch_pages`) go through the same
machinery with ``robots.txt``, per-host back-off and an address guard on top.

A plain path or a ``file://`` URL is read from disk, with the same cap; its
mtime plays Last-Modified so that an unchanged file answers 304.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import logging
import os
import socket
import ssl
import stat
import sys
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from monitor import __version__
from monitor.models import FetchRequest, FetchResult
from monitor.settings import PollConfig
from monitor.text import parse_retry_after

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

__all__ = ["PAGE_MAX_BYTES", "USER_AGENT", "PageMemory", "address_kind", "fetch_all",
           "fetch_many", "fetch_pages", "preload"]

log = logging.getLogger(__name__)

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"

# Only what we can decode with a bounded output: brotli is not advertised
# because no bounded brotli decoder is installed.
_ACCEPT_ENCODING = "gzip, deflate"
_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
           "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_CHUNK = 64 * 1024
# Decoded bytes per zlib call: zlib assembles each call's output in a second
# buffer, so one call for the whole cap would briefly hold the cap twice.
_STEP = 256 * 1024


# -- public API ---------------------------------------------------------------


async def fetch_many(
    requests: Iterable[FetchRequest], poll: PollConfig
) -> AsyncGenerator[FetchResult, None]:
    """Fetch every request concurrently, within ``poll``'s bounds (concurrency,
    per_host, timeout, max_bytes, max_redirects); yield each result as it
    completes.

    A feed's failure is a result, never an exception; only programming errors
    propagate. Close the generator early (``contextlib.aclosing``) to cancel
    the fetches still running.
    """
    async for _, result in _fetch_indexed(list(requests), poll):
        yield result


def preload(*, skip_ca_bundle: bool = False) -> None:
    """Import the HTTP client now (~0.1 s), e.g. in a process that will fetch
    while another does its own start-up.

    aiohttp builds two TLS contexts when imported, reading the CA bundle for
    each (~35 ms); they go unused, as every https request here carries the
    context of :func:`_tls_context`. ``skip_ca_bundle`` has them built without
    it. It patches the :mod:`ssl` module while aiohttp is imported, so only a
    process with no other thread may ask for it.
    """
    if skip_ca_bundle and "aiohttp" not in sys.modules:
        cls = ssl.SSLContext
        names = ("load_default_certs", "set_default_verify_paths")
        saved = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
        for name in names:
            setattr(cls, name, lambda self, *args: None)
        try:
            import aiohttp
        finally:
            for name in names:  # as they were (a method of the C base shows through again)
                if name in saved:
                    setattr(cls, name, saved[name])
                else:
                    delattr(cls, name)
    import aiohttp  # noqa: F401
    import yarl  # noqa: F401


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every https request: verified, built on first use (an
    all-http poll never reads the CA bundle), the same as aiohttp's default."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))
    return context


def fetch_all(requests: Iterable[FetchRequest], poll: PollConfig) -> list[FetchResult]:
    """Run :func:`fetch_many` on a fresh event loop; results in request order."""
    reqs = list(requests)

    async def run() -> list[FetchResult]:
        results: list[FetchResult | None] = [None] * len(reqs)
        async for i, result in _fetch_indexed(reqs, poll):
            results[i] = result
        return [r for r in results if r is not None]

    return asyncio.run(run())


# -- orchestration ------------------------------------------------------------


async def _fetch_indexed(
    reqs: list[FetchRequest], poll: PollConfig
) -> AsyncIterator[tuple[int, FetchResult]]:
    if not reqs:
        return
    targets = [_target(r.url) for r in reqs]
    needs_http = any(kind == "http" for kind, _ in targets)
    async with _Fetcher(poll, http=needs_http) as fetcher:
        tasks = [
            asyncio.create_task(fetcher.fetch(i, req, target))
            for i, (req, target) in enumerate(zip(reqs, targets, strict=True))
        ]
        # Only the tasks still running are kept: a list of them all would hold
        # every fetched body until the last fetch ends (10,000 feeds: 160 MB).
        # as_completed gets an iterator, as it keeps its argument to the end.
        pending = set(tasks)
        for task in tasks:
            task.add_done_callback(pending.discard)
        completions = asyncio.as_completed(iter(tasks))
        del tasks
        try:
            for next_done in completions:
                yield await next_done
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class _Fetcher:
    """One session and the semaphores shared by the fetches of one run.

    ``guard`` (article pages, :class:`_Guard`): every hop's address is checked
    (IP literals here, host names by the session's resolver, so a connection
    never reaches an address the guard refuses).
    """

    def __init__(self, poll: PollConfig, *, http: bool, guard: _Guard | None = None,
                 accept: str = _ACCEPT) -> None:
        self.poll = poll
        self._http = http
        self._guard = guard
        self._accept = accept
        self._session: aiohttp.ClientSession | None = None
        self._global = asyncio.Semaphore(poll.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> _Fetcher:
        if self._http:
            import aiohttp

            # The connector's own limits stay as a backstop, but waiting for them
            # would eat into the deadline: our semaphores are taken first.
            connector = aiohttp.TCPConnector(
                limit=self.poll.concurrency,
                limit_per_host=self.poll.per_host,
                ttl_dns_cache=300,
            )
            if self._guard is not None:
                # No DNS cache: every connection's addresses pass the guard.
                connector = aiohttp.TCPConnector(
                    limit=self.poll.concurrency, limit_per_host=self.poll.per_host,
                    use_dns_cache=False, resolver=_guarded_resolver(self._guard))
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # we decode, bounded (see _Decoder)
                timeout=aiohttp.ClientTimeout(total=None),  # our deadline governs
                cookie_jar=aiohttp.DummyCookieJar(),  # no state leaks between feeds
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": self._accept,
                    "Accept-Encoding": _ACCEPT_ENCODING,
                },
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(
        self, index: int, req: FetchRequest, target: tuple[str, str | Path]
    ) -> tuple[int, FetchResult]:
        kind, where = target
        if kind == "invalid":
            return index, _failure(req, "invalid_url", str(where))
        if kind == "file":
            assert isinstance(where, Path)
            async with self._global:
                return index, await asyncio.to_thread(_read_file, req, where, self.poll)
        assert isinstance(where, str)
        # Per-host first: a feed waiting for its host must not hold a global slot.
        host_sem = self._hosts.setdefault(where, asyncio.Semaphore(self.poll.per_host))
        async with host_sem, self._global:
            return index, await self._fetch_http(req)

    async def _fetch_http(self, req: FetchRequest) -> FetchResult:
        import aiohttp

        started = time.monotonic()
        state = _HttpState(req.url)
        try:
            async with asyncio.timeout(self.poll.timeout):
                result = await self._get(req, state, started)
        except TimeoutError:
            result = _failure(req, "timeout", f"no complete response within "
                              f"{self.poll.timeout:g}s", state.url)
        except aiohttp.ClientError as e:
            result = _failure(req, *_classify(e, state.url), state.url)
        except _BadURL as e:
            result = _failure(req, "invalid_url", str(e), state.url)
        except ssl.SSLError as e:  # OSError subclass: must come first
            result = _failure(req, "tls", f"TLS error: {_ssl_reason(e)}", state.url)
        except OSError as e:
            result = _failure(req, "connection", _os_reason(e), state.url)
        except _DecodeError as e:
            result = _failure(req, "encoding", str(e), state.url)
        if result.elapsed == 0.0:
            result = replace(result, elapsed=time.monotonic() - started)
        log.debug("fetched %s: %s", _redact(req.url), result.last_status)
        return result

    async def _get(self, req: FetchRequest, state: _HttpState, started: float) -> FetchResult:
        assert self._session is not None
        opts = self.poll
        url = _parse_url(req.url)
        seen = {_without_fragment(url)}
        conditional: dict[str, str] = {}
        if req.etag:
            conditional["If-None-Match"] = req.etag
        if req.last_modified:
            conditional["If-Modified-Since"] = req.last_modified
        redirects = 0
        while True:
            if self._guard is not None:
                refused = self._guard.refuses_url(url)
                if refused:
                    return _failure(req, "blocked", refused, state.url)
            # Each hop's own context: a redirect from http may lead to https.
            tls = _tls_context() if url.scheme == "https" else True
            async with self._session.get(url, headers=conditional, allow_redirects=False,
                                         ssl=tls) as resp:
                status = resp.status
                location = resp.headers.get("Location")
                if status in _REDIRECTS and location:
                    nxt = _without_fragment(url.join(_parse_url(location)))
                    state.url = str(nxt)
                    if nxt.scheme not in ("http", "https") or not nxt.host:
                        return _failure(req, "invalid_url", f"redirect to unsupported URL "
                                        f"{_redact(str(nxt))!r}", state.url)
                    if nxt in seen:
                        return _failure(req, "redirect_loop",
                                        f"redirect loop back to {_redact(str(nxt))}", state.url)
                    if redirects >= opts.max_redirects:
                        return _failure(req, "redirect_loop",
                                        f"more than {opts.max_redirects} redirects", state.url)
                    seen.add(nxt)
                    redirects += 1
                    url = nxt
                    continue
                headers = _headers(resp)
                final = str(url)
                etag = resp.headers.get("ETag")
                modified = resp.headers.get("Last-Modified")
                if status == 304:
                    return FetchResult(
                        url=req.url, status=304, headers=headers, final_url=final,
                        etag=etag or req.etag, last_modified=modified or req.last_modified,
                        elapsed=time.monotonic() - started)
                if status >= 300:
                    retry = (parse_retry_after(resp.headers.get("Retry-After"))
                             if status in _RETRY_AFTER_STATUSES else None)
                    return FetchResult(
                        url=req.url, status=status, headers=headers, final_url=final,
                        etag=req.etag, last_modified=req.last_modified, error_kind="http",
                        error=f"HTTP {status} {resp.reason or ''}".rstrip(),
                        retry_after=retry, elapsed=time.monotonic() - started)
                body = await _read_body(resp, opts.max_bytes)
                if body is None:
                    resp.close()  # drop the connection rather than drain the rest
                    return _failure(req, "too_large",
                                    f"body larger than {_size(opts.max_bytes)}", final)
                return FetchResult(
                    url=req.url, status=status, body=body, headers=headers, final_url=final,
                    etag=etag, last_modified=modified, elapsed=time.monotonic() - started)


@dataclass(slots=True)
class _HttpState:
    """Where a fetch has got to, for the error message when it fails."""

    url: str


# -- body ---------------------------------------------------------------------


class _BadURL(Exception):
    """A URL (the feed's, or a redirect's Location) that yarl cannot parse."""


def _parse_url(url: str) -> URL:
    from yarl import URL

    try:
        return URL(url.strip())
    except ValueError as e:
        raise _BadURL(f"invalid URL {_redact(url)!r}: {e}") from e


class _DecodeError(Exception):
    """The body's Content-Encoding is corrupt or unsupported."""


async def _read_body(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The decoded body, or None as soon as it would exceed ``max_bytes``."""
    decoder = _Decoder.for_header(resp.headers.get("Content-Encoding", ""))
    declared = resp.content_length
    if decoder.identity and declared is not None and declared > max_bytes:
        return None  # no need to read a byte of it
    pieces: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        # Ask for one byte more than the room left: getting it means "too large".
        out = decoder.feed(chunk, max_bytes - size + 1)
        size += sum(len(piece) for piece in out)
        if size > max_bytes:
            return None
        pieces += out
    return b"".join(pieces)


class _Decoder:
    """Incremental Content-Encoding decoding that never outputs more than asked.

    zlib's ``max_length`` bounds each step; whatever input is left waits in
    ``unconsumed_tail``, so memory stays at the cap however well the body
    compresses.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.identity = encoding == ""
        self._d: zlib._Decompress | None = None
        self._head = b""  # deflate: the first bytes, until zlib vs raw is known
        self._trailing = False  # garbage after the last gzip member: ignored
        if encoding == "gzip":
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @classmethod
    def for_header(cls, header: str) -> _Decoder:
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return cls("")
        if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
            return cls("gzip")
        if len(codings) == 1 and codings[0] == "deflate":
            return cls("deflate")
        raise _DecodeError(f"unsupported Content-Encoding {header!r}")

    def feed(self, data: bytes, limit: int) -> list[bytes]:
        """Decode ``data`` into pieces of at most ``limit`` bytes in all (reaching it: stop).

        Pieces, not one joined string: joining would copy up to the cap once more.
        """
        if self.identity:
            return [data]
        if self._d is None:  # deflate: "zlib" per the RFC, raw in practice too
            self._head += data
            if len(self._head) < 2:
                return []
            data, self._head = self._head, b""
            wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
            self._d = zlib.decompressobj(wbits)
        out: list[bytes] = []
        size = 0
        while data and not self._trailing and size < limit:
            if self._d.eof:
                if self.encoding != "gzip":
                    break  # one deflate stream; the rest is ignored
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another gzip member
                fresh = True
            else:
                fresh = False
            try:
                piece = self._d.decompress(data, min(limit - size, _STEP))
            except zlib.error as e:
                if fresh:  # padding or junk after a complete member, as gzip(1) allows
                    self._trailing = True
                    break
                raise _DecodeError(f"corrupt {self.encoding} body: {e}") from e
            out.append(piece)
            size += len(piece)
            # Input left over is either held back by max_length or follows the
            # end of a stream (eof).
            data = self._d.unconsumed_tail or (self._d.unused_data if self._d.eof else b"")
        return out


def _is_zlib_header(data: bytes) -> bool:
    return data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0


# -- local files --------------------------------------------------------------


def _read_file(req: FetchRequest, path: Path, poll: PollConfig) -> FetchResult:
    """A local feed file, capped like a body; 304 while its mtime is unchanged."""
    started = time.monotonic()
    where = str(path)
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # a FIFO or device would never end
                return _failure(req, "file", f"{where}: not a regular file", where)
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
            # The etag has nanoseconds; the HTTP date only seconds: prefer it.
            unchanged = req.etag == etag if req.etag else req.last_modified == modified
            if unchanged:
                return FetchResult(url=req.url, status=304, final_url=where, etag=etag,
                                   last_modified=modified,
                                   elapsed=time.monotonic() - started)
            if st.st_size > poll.max_bytes:
                return _failure(req, "too_large",
                                f"file larger than {_size(poll.max_bytes)}", where)
            body = f.read(poll.max_bytes + 1)
    except OSError as e:
        return _failure(req, "file", f"{where}: {e.strerror or e}", where)
    if len(body) > poll.max_bytes:  # it grew while we read
        return _failure(req, "too_large", f"file larger than {_size(poll.max_bytes)}", where)
    return FetchResult(url=req.url, status=200, body=body, final_url=where, etag=etag,
                       last_modified=modified, elapsed=time.monotonic() - started)


# -- helpers ------------------------------------------------------------------


def _target(url: str) -> tuple[str, str | Path]:
    """("http", host) | ("file", path) | ("invalid", message) for a feed URL."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as e:
        return "invalid", f"invalid URL {_redact(url)!r}: {e}"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        try:
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            return "invalid", f"invalid URL {_redact(url)!r}: {e}"
        if not host:
            return "invalid", f"no host in URL {_redact(url)!r}"
        return "http", host
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return "invalid", f"file URL on another host: {_redact(url)!r}"
        return "file", Path(unquote(parts.path))
    if scheme == "":
        if not url:
            return "invalid", "empty URL"
        return "file", Path(url)
    return "invalid", f"unsupported URL scheme {scheme!r} in {_redact(url)!r}"


def _failure(req: FetchRequest, kind: str, message: str,
             final_url: str | None = None) -> FetchResult:
    # The validators are what to send next time: a failure keeps the old ones.
    return FetchResult(url=req.url, status=None, final_url=final_url, etag=req.etag,
                       last_modified=req.last_modified, error_kind=kind, error=message)


def _classify(e: aiohttp.ClientError, url: str) -> tuple[str, str]:
    """The error word and a short message for an aiohttp exception."""
    import aiohttp

    host = urlsplit(url).hostname or "?"
    blocked = getattr(e, "os_error", None)
    if isinstance(blocked, _Blocked):
        return "blocked", str(blocked)
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return "dns", f"cannot resolve host {host!r}"
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return "tls", f"TLS certificate of {host!r} rejected: {_ssl_reason(e.certificate_error)}"
    if isinstance(e, aiohttp.ClientSSLError):
        return "tls", f"TLS handshake with {host!r} failed: {_ssl_reason(e.os_error)}"
    if isinstance(e, aiohttp.ClientConnectorError):
        return "connection", f"cannot connect to {host!r}: {_os_reason(e.os_error)}"
    if isinstance(e, aiohttp.InvalidURL):
        return "invalid_url", f"invalid URL {_redact(url)!r}"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "connection", f"{host!r} closed the connection"
    if isinstance(e, aiohttp.ClientResponseError):  # the response did not parse as HTTP
        first_line = str(e.message).strip().splitlines()[:1] or ["?"]
        return "connection", f"malformed HTTP response from {host!r}: {first_line[0]}"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "connection", f"body from {host!r} cut short: {e}"
    if isinstance(e, OSError):
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ssl.SSLError):
            return "tls", f"TLS error with {host!r}: {_ssl_reason(cause)}"
        return "connection", f"connection to {host!r} failed: {_os_reason(e)}"
    return "connection", f"request to {host!r} failed: {type(e).__name__}"


def _ssl_reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError) and e.reason:
        return str(e.reason).lower().replace("_", " ")
    return str(e) or type(e).__name__


def _os_reason(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    return e.strerror or str(e) or type(e).__name__


def _headers(resp: aiohttp.ClientResponse) -> Mapping[str, str]:
    """Response headers as a plain dict, keys lowercased (repeats joined)."""
    out: dict[str, str] = {}
    for key, value in resp.headers.items():
        k = key.lower()
        out[k] = f"{out[k]}, {value}" if k in out else value
    return out


def _without_fragment(url: URL) -> URL:
    return url.with_fragment(None)


def _redact(url: str) -> str:
    """``url`` without its userinfo, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n} bytes"


# -- article pages (full_text) ------------------------------------------------

#: An article page is cut off past this (or ``[poll] max_bytes``, if smaller).
PAGE_MAX_BYTES = 2 * 1024 * 1024
#: Article pages held at once, fetched or in flight, not yet read by the caller.
PAGES_HELD = 8
#: How long a host's robots.txt verdict is kept; an unreachable one is asked
#: again sooner.
ROBOTS_TTL = 3600.0
ROBOTS_RETRY = 600.0
#: A host that failed at the connection level, or said 429/503 without a
#: Retry-After, is left alone this long (doubling with each failure in a row).
HOST_BACKOFF = 60.0
_PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_ROBOTS_AGENT = "news-monitor"  # the product token robots.txt groups name
_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")
# Cloud metadata services outside 169.254/16 and fe80::/10 (always refused anyway).
_METADATA = frozenset({"100.100.100.200", "fd00:ec2::254", "192.0.0.192"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # IPv4 addresses embedded by NAT64


class _Blocked(OSError):
    """An address the guard refuses (raised by the resolver, shown as ``blocked``)."""


@dataclass(frozen=True, slots=True)
class _Guard:
    """Which addresses an article fetch may reach: never link-local, metadata,
    multicast or unspecified ones; private and loopback only when ``private``."""

    private: bool

    def refuses_address(self, address: str) -> str | None:
        word = address_kind(address)
        if word == "forbidden" or (word == "private" and not self.private):
            return f"address {address} not allowed for an article page ({word})"
        return None

    def refuses_url(self, url: URL) -> str | None:
        """Why ``url`` may not be fetched, judged on its scheme and an IP literal
        host; host names are judged on their addresses, by the resolver."""
        if url.scheme not in ("http", "https") or not url.host:
            return f"not an http(s) URL: {_redact(str(url))!r}"
        host = url.host.strip("[]")
        if _is_ip(host):
            return self.refuses_address(host)
        return None


def address_kind(address: str) -> str:
    """``forbidden`` (link-local, metadata, multicast, unspecified, reserved),
    ``private`` (loopback, private, shared, any non-global) or ``public``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "forbidden"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.is_link_local or str(ip) in _METADATA or ip.is_multicast or ip.is_unspecified:
        return "forbidden"
    if ip.is_loopback:  # before is_reserved: ::1 is in IPv6's reserved ::/8
        return "private"
    if ip.is_reserved:
        return "forbidden"
    if ip.is_private or not ip.is_global:
        return "private"
    return "public"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _guarded_resolver(guard: _Guard) -> aiohttp.abc.AbstractResolver:
    """The system resolver, refusing a host any of whose addresses the guard refuses
    (all of them, not the first: the connector tries each in turn)."""
    import aiohttp

    class GuardedResolver(aiohttp.ThreadedResolver):
        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET
                          ) -> list[aiohttp.abc.ResolveResult]:
            found = await super().resolve(host, port, family)
            for entry in found:
                refused = guard.refuses_address(entry["host"])
                if refused:
                    raise _Blocked(f"{host!r}: {refused}")
            return found

    return GuardedResolver()


async def _host_is_private(url: str) -> bool:
    """Whether a feed is on a loopback or private address (every address its host
    has), or is a local file: its article links may then be on such addresses too."""
    target, where = _target(url)
    if target == "file":
        return True
    if target != "http":
        return False
    assert isinstance(where, str)
    host = where.strip("[]")
    if _is_ip(host):
        return address_kind(host) == "private"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None,
                                                             type=socket.SOCK_STREAM)
    except OSError:
        return False
    kinds = {address_kind(str(info[4][0])) for info in infos}
    return kinds == {"private"}


@dataclass(slots=True)
class PageMemory:
    """What article fetching remembers between polls (the poller keeps one):
    each host's robots.txt verdict until it expires, and the hosts backing off.

    Times are ``time.monotonic()`` seconds.
    """

    robots: dict[str, tuple[float, object]] = field(default_factory=dict)
    backoff: dict[str, tuple[float, int]] = field(default_factory=dict)  # until, failures

    def forget_expired(self, now: float) -> None:
        """Drop what has expired (bounds a long-running daemon's memory)."""
        self.robots = {k: v for k, v in self.robots.items() if v[0] > now}
        self.backoff = {k: v for k, v in self.backoff.items() if v[0] > now}


_ALLOW_ALL = "allow"
_DENY_ALL = "deny"


async def fetch_pages(urls: Sequence[str], feed_url: str, poll: PollConfig,
                      memory: PageMemory) -> AsyncGenerator[tuple[int, FetchResult], None]:
    """Fetch the article pages ``urls`` (the new items' links of the feed at
    ``feed_url``) concurrently within ``poll``'s bounds, the body capped at
    :data:`PAGE_MAX_BYTES`; yield (index, result) as each completes.

    Over the feed fetcher's bounds: the host's ``robots.txt`` is obeyed (cached
    in ``memory``), a host that asked to wait (Retry-After) or keeps failing is
    not asked until then, and the address guard (:class:`_Guard`) checks every
    hop. Error words besides the feed fetcher's: ``robots`` (disallowed),
    ``blocked`` (an address refused), ``backoff``, ``not_html``.
    """
    if not urls:
        return
    opts = replace(poll, max_bytes=min(poll.max_bytes, PAGE_MAX_BYTES))
    guard = _Guard(private=await _host_is_private(feed_url))
    # Pages fetched or in flight but not yet taken by the caller: what bounds the
    # memory (each at most the cap) while the caller reads them one at a time.
    held = asyncio.Semaphore(max(1, min(poll.concurrency, PAGES_HELD)))
    async with _Fetcher(opts, http=True, guard=guard, accept=_PAGE_ACCEPT) as fetcher:
        robots: dict[str, asyncio.Task[object]] = {}

        async def one(i: int, url: str) -> tuple[int, FetchResult]:
            await held.acquire()
            return i, await _fetch_page(fetcher, url, memory, robots)

        tasks = [asyncio.create_task(one(i, u)) for i, u in enumerate(urls)]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
                held.release()  # the caller is done with that page
        finally:
            for task in [*tasks, *robots.values()]:
                task.cancel()
            await asyncio.gather(*tasks, *robots.values(), return_exceptions=True)


async def _fetch_page(fetcher: _Fetcher, url: str, memory: PageMemory,
                      robots: dict[str, asyncio.Task[object]]) -> FetchResult:
    req = FetchRequest(url=url)
    try:
        parsed = _parse_url(url)
    except _BadURL as e:
        return _failure(req, "invalid_url", str(e))
    assert fetcher._guard is not None
    refused = fetcher._guard.refuses_url(parsed)
    if refused:
        return _failure(req, "blocked" if parsed.scheme in ("http", "https") else
                        "invalid_url", refused)
    origin = f"{parsed.scheme}://{parsed.raw_authority}"
    now = time.monotonic()
    waiting = memory.backoff.get(origin)
    if waiting is not None and waiting[0] > now:
        return _failure(req, "backoff", f"{parsed.host} asked to wait: not asked for "
                        f"{waiting[0] - now:.0f}s more")
    verdict = memory.robots.get(origin)
    if verdict is None or verdict[0] <= now:
        task = robots.get(origin)
        if task is None:
            task = robots[origin] = asyncio.create_task(_robots(fetcher, origin, memory))
        rules = await asyncio.shield(task)
    else:
        rules = verdict[1]
    if isinstance(rules, FetchResult):  # the host's address refused: the guard's word
        return _failure(req, "blocked", rules.error or "address refused")
    if rules == _DENY_ALL:
        return _failure(req, "robots", f"{origin}/robots.txt could not be read: "
                        "nothing fetched from it until it can")
    if rules != _ALLOW_ALL and not rules.can_fetch(_ROBOTS_AGENT, url):  # type: ignore[attr-defined]
        return _failure(req, "robots", f"robots.txt of {parsed.host} disallows {parsed.path}")
    _, result = await fetcher.fetch(0, req, ("http", parsed.host or ""))
    _note_host(memory, origin, result, fetcher.poll)
    if result.ok:
        ctype = result.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _HTML_TYPES:
            return _failure(req, "not_html", f"not a web page ({ctype})", result.final_url)
    return result


async def _robots(fetcher: _Fetcher, origin: str, memory: PageMemory) -> object:
    """The host's robots.txt as a parser, or allow-all / deny-all (RFC 9309: a 4xx
    means no rules; a 5xx, a 429 or no answer means nothing may be fetched)."""
    from urllib.robotparser import RobotFileParser

    req = FetchRequest(url=f"{origin}/robots.txt")
    host = urlsplit(origin).hostname or ""
    _, result = await fetcher.fetch(0, req, ("http", host))
    if result.error_kind == "blocked":  # judged for this feed only: not remembered
        return result
    ttl = ROBOTS_TTL
    verdict: object
    if result.ok:
        parser = RobotFileParser()
        parser.parse(result.body.decode("utf-8", "replace").splitlines())
        parser.modified()  # can_fetch says no to a parser never marked as read
        verdict = parser
    elif result.status is not None and 400 <= result.status < 500 and result.status != 429:
        verdict = _ALLOW_ALL
    else:
        verdict, ttl = _DENY_ALL, ROBOTS_RETRY
        _note_host(memory, origin, result, fetcher.poll)
    memory.robots[origin] = (time.monotonic() + ttl, verdict)
    return verdict


def _note_host(memory: PageMemory, origin: str, result: FetchResult, poll: PollConfig) -> None:
    """Back off a host that asked to wait or cannot be reached; forget it on success."""
    asked = result.status in _RETRY_AFTER_STATUSES
    unreachable = result.error_kind in ("dns", "connection", "tls")
    if not (asked or unreachable):
        if result.ok:
            memory.backoff.pop(origin, None)
        return
    failures = memory.backoff.get(origin, (0.0, 0))[1] + 1
    wait = result.retry_after if result.retry_after is not None else \
        HOST_BACKOFF * 2 ** min(failures - 1, 16)
    memory.backoff[origin] = (time.monotonic() + min(wait, poll.max_backoff), failures)
