"""The fetcher against a real loopback server: statuses, validators, bounds, hostile feeds."""

from __future__ import annotations

import asyncio
import email.utils
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from contextlib import aclosing
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
    html_page,
    random_bytes,
    rss,
    wrong_charset,
)

from monitor import __version__
from monitor.fetch import fetch_all, fetch_many
from monitor.models import FetchRequest, FetchResult
from monitor.settings import PollConfig

MiB = 1024 * 1024


def fetch(target: str | FetchRequest, **options: object) -> FetchResult:
    req = target if isinstance(target, FetchRequest) else FetchRequest(target)
    [result] = fetch_all([req], PollConfig(**options))  # type: ignore[arg-type]
    return result


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_idle(server: FeedServer, limit: float = 10.0) -> None:
    """Wait until the server has finished writing (it notices a closed client late)."""
    deadline = time.monotonic() + limit
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)


# -- plain HTTP ---------------------------------------------------------------


def test_200_returns_body_and_validators(feed_server: FeedServer) -> None:
    route = Feed(rss("One"))
    feed_server.routes["/feed.xml"] = route

    result = fetch(feed_server.url("/feed.xml"))

    assert result.ok and result.status == 200 and result.error_kind is None
    assert result.body == route.body
    assert result.etag == route.etag
    assert result.last_modified == route.last_modified
    assert result.headers["content-type"] == route.content_type
    assert result.final_url == feed_server.url("/feed.xml")
    assert result.elapsed > 0


def test_second_poll_is_conditional_and_gets_304(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Feed()
    first = fetch(feed_server.url("/feed.xml"))

    second = fetch(FetchRequest(first.url, first.etag, first.last_modified))

    assert second.not_modified and second.body == b""
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = feed_server.requests("/feed.xml")[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified
    assert feed_server.statuses("/feed.xml") == [200, 304]


def test_changed_feed_answers_200_with_new_validators(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Feed(rss(seed="a"))
    first = fetch(feed_server.url("/feed.xml"))
    feed_server.routes["/feed.xml"] = Feed(rss(seed="b"))

    second = fetch(FetchRequest(first.url, first.etag, first.last_modified))

    assert second.status == 200 and second.body == rss(seed="b")
    assert second.etag != first.etag


def test_if_modified_since_alone_gets_304(feed_server: FeedServer) -> None:
    route = Feed()
    feed_server.routes["/feed.xml"] = route

    result = fetch(FetchRequest(feed_server.url("/feed.xml"), last_modified=route.last_modified))

    assert result.status == 304
    assert "if-none-match" not in feed_server.requests()[0].headers


def test_304_without_validators_keeps_the_old_ones(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Status(304)

    old = ('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")

    result = fetch(FetchRequest(feed_server.url("/feed.xml"), *old))

    assert result.not_modified
    assert (result.etag, result.last_modified) == old


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_statuses_are_http_errors(feed_server: FeedServer, status: int) -> None:
    feed_server.routes["/feed.xml"] = Status(status)

    result = fetch(FetchRequest(feed_server.url("/feed.xml"), etag='"old"'))

    assert result.status == status and result.error_kind == "http"
    assert not result.ok and result.last_status == status
    assert str(status) in (result.error or "")
    assert result.gone == (status == 410)
    assert result.etag == '"old"'  # a failure keeps the validators for next time
    assert result.retry_after is None


def test_unknown_path_is_404(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/nowhere"))
    assert (result.status, result.error_kind) == (404, "http")


@pytest.mark.parametrize(
    ("status", "header", "low", "high"),
    [
        (429, "120", 120, 120),
        (503, "0", 0, 0),
        (429, "in-future", 290, 301),
        (503, "in-past", 0, 0),
    ],
)
def test_retry_after(feed_server: FeedServer, status: int, header: str,
                     low: float, high: float) -> None:
    if header == "in-future":
        header = email.utils.formatdate(time.time() + 300, usegmt=True)
    elif header == "in-past":
        header = email.utils.formatdate(time.time() - 300, usegmt=True)
    feed_server.routes["/feed.xml"] = Status(status, retry_after=header)

    result = fetch(feed_server.url("/feed.xml"))

    assert result.status == status
    assert result.retry_after is not None and low <= result.retry_after <= high


@pytest.mark.parametrize(("status", "header"), [(429, "soon"), (500, "120")])
def test_retry_after_ignored_when_unreadable_or_not_429_503(
        feed_server: FeedServer, status: int, header: str) -> None:
    feed_server.routes["/feed.xml"] = Status(status, retry_after=header)
    assert fetch(feed_server.url("/feed.xml")).retry_after is None


def test_user_agent_and_accept_encoding(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Feed()
    fetch(feed_server.url("/feed.xml"))

    headers = feed_server.requests()[0].headers
    assert headers["user-agent"] == (
        f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)")
    # Only encodings we decode with bounded output are advertised.
    assert headers["accept-encoding"] == "gzip, deflate"


# -- redirects ----------------------------------------------------------------


def test_redirect_is_followed(feed_server: FeedServer) -> None:
    feed_server.routes["/old"] = Redirect("/new", 301)
    feed_server.routes["/new"] = Redirect(feed_server.url("/feed.xml"), 302)
    feed_server.routes["/feed.xml"] = Feed()

    result = fetch(feed_server.url("/old"))

    assert result.status == 200 and result.body == rss()
    assert result.url == feed_server.url("/old")
    assert result.final_url == feed_server.url("/feed.xml")
    assert feed_server.statuses() == [301, 302, 200]


def test_redirect_loop(feed_server: FeedServer) -> None:
    feed_server.routes["/a"] = Redirect("/b")
    feed_server.routes["/b"] = Redirect("/a")

    result = fetch(feed_server.url("/a"))

    assert (result.status, result.error_kind) == (None, "redirect_loop")
    assert feed_server.count() == 2


def test_too_many_redirects(feed_server: FeedServer) -> None:
    for i in range(10):
        feed_server.routes[f"/{i}"] = Redirect(f"/{i + 1}", 307)
    feed_server.routes["/10"] = Feed()

    assert fetch(feed_server.url("/7"), max_redirects=3).ok
    result = fetch(feed_server.url("/0"), max_redirects=3)
    assert result.error_kind == "redirect_loop"
    assert "3 redirects" in (result.error or "")


def test_redirect_to_another_scheme_is_invalid(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Redirect("ftp://127.0.0.1/feed.xml")
    assert fetch(feed_server.url("/feed.xml")).error_kind == "invalid_url"


# -- bounds: time, size -------------------------------------------------------


@pytest.mark.slow
def test_drip_feed_hits_the_total_deadline(feed_server: FeedServer) -> None:
    # A byte every 0.3 s would defeat any per-read timeout; the total one ends it.
    feed_server.routes["/drip"] = Drip(interval=0.3)

    result = fetch(feed_server.url("/drip"), timeout=1.0)

    assert (result.status, result.error_kind) == (None, "timeout")
    assert 0.9 <= result.elapsed < 5
    assert feed_server.requests("/drip")[0].sent >= 2


def test_huge_body_is_cut_at_the_cap(feed_server: FeedServer) -> None:
    size = 512 * MiB  # streamed without Content-Length: only reading can tell
    feed_server.routes["/huge"] = Huge(size)

    result = fetch(feed_server.url("/huge"), max_bytes=1 * MiB)

    assert (result.status, result.error_kind, result.body) == (None, "too_large", b"")
    wait_idle(feed_server)
    # The client hung up near the cap: the server got to send only socket buffers' worth.
    assert feed_server.requests("/huge")[0].sent < 64 * MiB


def test_declared_oversize_body_is_not_read(feed_server: FeedServer) -> None:
    feed_server.routes["/huge"] = Huge(512 * MiB, content_length=True)

    result = fetch(feed_server.url("/huge"), max_bytes=1 * MiB)

    assert result.error_kind == "too_large"
    wait_idle(feed_server)
    assert feed_server.requests("/huge")[0].sent < 64 * MiB


def test_body_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    feed_server.routes["/exact"] = Feed(b"x" * 1000)
    feed_server.routes["/over"] = Feed(b"x" * 1001)
    feed_server.routes["/gz-over"] = Feed(b"x" * 1001, encoding="gzip")

    assert fetch(feed_server.url("/exact"), max_bytes=1000).body == b"x" * 1000
    assert fetch(feed_server.url("/over"), max_bytes=1000).error_kind == "too_large"
    assert fetch(feed_server.url("/gz-over"), max_bytes=1000).error_kind == "too_large"


def test_gzip_bomb_is_stopped_with_bounded_memory(feed_server: FeedServer) -> None:
    import aiohttp  # noqa: F401 - imported before tracing: its import is not the fetch's

    expanded = 1024 * MiB  # about 1 MiB on the wire
    feed_server.routes["/bomb"] = GzipBomb(expanded)
    fetch_all([], PollConfig())  # warm up lazy imports outside the trace

    tracemalloc.start()
    try:
        result = fetch(feed_server.url("/bomb"), max_bytes=4 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.error_kind == "too_large"
    assert peak < 24 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(feed_server: FeedServer, encoding: str) -> None:
    body = rss("Compressed", items=50)
    feed_server.routes["/feed.xml"] = Feed(body, encoding=encoding)

    result = fetch(feed_server.url("/feed.xml"))

    assert result.status == 200 and result.body == body
    assert result.headers["content-encoding"] in ("gzip", "deflate")


def test_concatenated_gzip_members_are_decoded(feed_server: FeedServer) -> None:
    import gzip

    wire = gzip.compress(b"<rss>") + gzip.compress(b"</rss>") + b"\x00\x00"  # padded, as seen
    feed_server.routes["/feed.xml"] = Feed(wire, headers={"Content-Encoding": "gzip"})

    assert fetch(feed_server.url("/feed.xml")).body == b"<rss></rss>"


@pytest.mark.parametrize(("wire", "coding"), [(b"plain text, not gzip", "gzip"),
                                              (b"whatever", "br")])
def test_corrupt_or_unknown_encoding(feed_server: FeedServer, wire: bytes, coding: str) -> None:
    feed_server.routes["/feed.xml"] = Feed(wire, headers={"Content-Encoding": coding})

    result = fetch(feed_server.url("/feed.xml"))

    assert (result.status, result.error_kind) == (None, "encoding")


# -- hostile but well-formed responses pass through to the parser -------------


@pytest.mark.parametrize("make", [html_page, random_bytes, empty, wrong_charset])
def test_junk_bodies_are_returned_as_they_came(feed_server: FeedServer, make: object) -> None:
    route = make()  # type: ignore[operator]
    feed_server.routes["/feed.xml"] = route

    result = fetch(feed_server.url("/feed.xml"))

    assert result.status == 200 and result.body == route.body
    assert result.headers["content-type"] == route.content_type


def test_not_http_at_all(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = NotHttp()

    result = fetch(feed_server.url("/feed.xml"))

    assert (result.status, result.error_kind) == (None, "connection")
    assert "\n" not in (result.error or "")


# -- network failures ---------------------------------------------------------


def test_connection_refused() -> None:
    result = fetch(f"http://127.0.0.1:{closed_port()}/feed.xml")
    assert (result.status, result.error_kind) == (None, "connection")
    assert "refused" in (result.error or "")


def test_dns_failure() -> None:
    # RFC 6761: names under .invalid never resolve; the lookup fails locally.
    result = fetch("http://nonexistent.invalid/feed", timeout=10)
    assert (result.status, result.error_kind) == (None, "dns")
    assert "nonexistent.invalid" in (result.error or "")


def test_tls_handshake_failure(feed_server: FeedServer) -> None:
    feed_server.routes["/feed.xml"] = Feed()
    # The server speaks plain HTTP: its answer to a ClientHello is no TLS record.
    result = fetch(f"https://127.0.0.1:{feed_server.port}/feed.xml")
    assert (result.status, result.error_kind) == (None, "tls")


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "http:///feed", "https://",
                                 "http://example.org:99999/feed", "mailto:a@example.org", ""])
def test_invalid_urls(url: str) -> None:
    result = fetch(url)
    assert (result.status, result.error_kind) == (None, "invalid_url")


def test_messages_do_not_leak_credentials() -> None:
    result = fetch(f"http://reader:s3cret@127.0.0.1:{closed_port()}/feed.xml")
    assert result.error_kind == "connection"
    assert "s3cret" not in (result.error or "")
    result = fetch("ftp://reader:s3cret@example.org/feed")
    assert "s3cret" not in (result.error or "")


# -- local files --------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True])
def test_local_file(tmp_path: Path, as_url: bool) -> None:
    path = tmp_path / "feed one.xml"
    path.write_bytes(rss("Local"))
    url = path.as_uri() if as_url else str(path)

    first = fetch(url)
    assert first.status == 200 and first.body == rss("Local")
    assert first.last_modified == email.utils.formatdate(path.stat().st_mtime, usegmt=True)

    again = fetch(FetchRequest(url, first.etag, first.last_modified))
    assert again.not_modified and again.body == b""

    by_date = fetch(FetchRequest(url, last_modified=first.last_modified))
    assert by_date.not_modified

    path.write_bytes(rss("Changed"))
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    changed = fetch(FetchRequest(url, first.etag, first.last_modified))
    assert changed.status == 200 and changed.body == rss("Changed")


def test_local_file_failures(tmp_path: Path) -> None:
    assert fetch(str(tmp_path / "missing.xml")).error_kind == "file"
    assert fetch(str(tmp_path)).error_kind == "file"
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    assert fetch(str(big), max_bytes=1000).error_kind == "too_large"


@pytest.mark.slow
def test_local_files_alone_do_not_import_aiohttp(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(rss())
    code = ("import sys\nfrom monitor.fetch import fetch_all\nfrom monitor.models import "
            "FetchRequest\nfrom monitor.settings import PollConfig\n"
            f"assert fetch_all([FetchRequest({str(path)!r})], PollConfig())[0].status == 200\n"
            "assert 'aiohttp' not in sys.modules, 'aiohttp imported'\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- concurrency and streaming results ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("concurrency", "per_host"), [(8, 2), (3, 10)])
def test_concurrency_bounds(feed_server: FeedServer, concurrency: int, per_host: int) -> None:
    for i in range(12):
        feed_server.routes[f"/{i}.xml"] = Feed(rss(seed=str(i)), delay=0.1)
    requests = [FetchRequest(feed_server.url(f"/{i}.xml")) for i in range(12)]

    results = fetch_all(requests, PollConfig(concurrency=concurrency, per_host=per_host))

    assert [r.body for r in results] == [rss(seed=str(i)) for i in range(12)]  # request order
    assert feed_server.peak_in_flight == min(concurrency, per_host)


@pytest.mark.slow
def test_one_bad_feed_costs_only_itself(feed_server: FeedServer) -> None:
    feed_server.routes["/good.xml"] = Feed()
    feed_server.routes["/bomb"] = GzipBomb(256 * MiB)
    feed_server.routes["/drip"] = Drip(0.2)
    feed_server.routes["/huge"] = Huge(64 * MiB)
    urls = ["/bomb", "/drip", "/huge", "/good.xml", "/nowhere"]
    options = PollConfig(timeout=1.0, max_bytes=1 * MiB)

    results = fetch_all([FetchRequest(feed_server.url(u)) for u in urls], options)

    assert [r.last_status for r in results] == ["too_large", "timeout", "too_large", 200, 404]
    assert results[3].body == rss()


@pytest.mark.slow
def test_fetch_many_yields_as_completed(feed_server: FeedServer) -> None:
    feed_server.routes["/slow.xml"] = Feed(delay=0.5)
    feed_server.routes["/fast.xml"] = Feed()
    requests = [FetchRequest(feed_server.url("/slow.xml")),
                FetchRequest(feed_server.url("/fast.xml"))]

    async def first_two() -> list[str]:
        async with aclosing(fetch_many(requests, PollConfig())) as results:
            return [r.url async for r in results]

    assert asyncio.run(first_two()) == [r.url for r in reversed(requests)]


def test_closing_fetch_many_early_cancels_the_rest(feed_server: FeedServer) -> None:
    feed_server.routes["/drip"] = Drip(0.1)
    feed_server.routes["/fast.xml"] = Feed()
    requests = [FetchRequest(feed_server.url("/drip")), FetchRequest(feed_server.url("/fast.xml"))]

    async def first_only() -> FetchResult:
        async with aclosing(fetch_many(requests, PollConfig(timeout=30))) as results:
            async for result in results:
                return result
        raise AssertionError("nothing yielded")

    started = time.monotonic()
    assert asyncio.run(first_only()).url == requests[1].url
    assert time.monotonic() - started < 10  # the drip was cancelled, not waited for


def test_no_requests() -> None:
    assert fetch_all([], PollConfig()) == []
