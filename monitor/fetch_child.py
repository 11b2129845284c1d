"""Start-up speed machinery of a one-off ``poll``: the fetch and parse stages in
a forked child process (:class:`ForkedFetcher`).

Why it exists: a one-off ``poll`` spends its first ~0.3 s importing
(SQLAlchemy, the rules) and opening the store. A child forked before that
imports the HTTP client meanwhile, on the other core, then fetches and parses
while the parent matches and stores. Its worth is measured by
``bench/bench_poll.py``, the cold and all-304 polls of 500 feeds side by side
with reader 3.27 (``bench/README.md``, "Fetch and parse in a child process"
and "The fetch child starts before SQLAlchemy is imported"): a pool of parse
workers, tried first, took 1.55 s against 1.25 s for a cold 500 and 120 MiB
of PSS against 90; sending the requests before SQLAlchemy is imported took an
all-304 poll from 0.32 s to 0.29-0.30 s. The daemon does without: it fetches
and parses in-process, and :mod:`monitor.pipeline` consumes this child's
results the same way.

Like the orchestrator, this module wires stages (fetch, then parse) that
never import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO

from monitor.models import FetchRequest, FetchResult, ParsedFeed

if TYPE_CHECKING:
    from monitor.settings import PollConfig

__all__ = ["ForkedFetcher"]

_FRAME = 8  # bytes of length before each pickled FetchResult; 0 ends the stream


class ForkedFetcher:
    """The fetch and parse stages in a child process, forked when a one-off
    ``poll`` starts (see the module's docstring for why).

    The requests may be sent (:meth:`send`) as soon as the feeds' validators
    are read, before SQLAlchemy is imported. Results come back over a pipe,
    one pickled (FetchResult without its body, ParsedFeed or None) at a time;
    the child blocks while the pipe is full, so fetched documents cannot pile
    up (as in-process, where handling a result holds the event loop).
    Only from a process with no other thread. One fetch each.
    """

    def __init__(self, pid: int, requests_fd: int, results_fd: int) -> None:
        self.pid = pid
        self.sent: list[FetchRequest] | None = None  # what it was asked to fetch
        self._requests_fd: int | None = requests_fd
        self._results_fd: int | None = results_fd

    @classmethod
    def start(cls, prepare: Callable[[], object] | None = None, *,
              fetch_if: Callable[[object], bool] | None = None) -> ForkedFetcher | None:
        """Fork the fetcher now, or None where that is not safe (threads, no fork).

        ``prepare``, if given, is called in the child first (more of the
        parent's start-up work, such as loading the rules); :meth:`prepared`
        returns what it returned, which must pickle. When ``fetch_if`` says
        no to it, the child ends there, having fetched nothing.
        """
        # A fork copies no thread but the calling one: a lock another thread
        # held would stay held in the child. Elsewhere than Linux, system
        # libraries may not survive a fork at all (macOS).
        if sys.platform != "linux" or threading.active_count() > 1:
            return None
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        sys.stdout.flush()  # else what is buffered would be written twice
        sys.stderr.flush()
        import gc

        # Out of the collector's sight: the child's collections would otherwise
        # write to every inherited object, and so copy every page it shares.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child: it never returns, and runs no atexit handler
            import signal

            # Ctrl-C is the parent's to handle; then it stops reading, and the
            # child ends at its next write (as when the parent is killed).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = 1
            try:
                os.close(req_w)
                os.close(res_r)
                _fetch_child(req_r, res_w, prepare, fetch_if)
                code = 0
            except BrokenPipeError:
                code = 0  # the parent stopped reading: it has all it wants
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(res_w)
        return cls(pid, req_w, res_r)

    def prepared(self) -> object:
        """What ``prepare`` returned in the child (waiting for it)."""
        import pickle

        assert self._results_fd is not None
        data = _read_frame(self._results_fd)
        if data is None:
            from monitor.errors import MonitorError

            raise MonitorError("the fetch process ended unexpectedly")
        return pickle.loads(data)

    def send(self, requests: Sequence[FetchRequest], poll: PollConfig) -> None:
        """Start fetching now (the caller may still be starting up): :attr:`sent`
        remembers the requests, and :meth:`results` streams their outcome."""
        import pickle

        assert self._requests_fd is not None, "one fetch each"
        fd, self._requests_fd = self._requests_fd, None
        # The child may have ended already (see ``fetch_if``): it says why
        # through prepared().
        with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as out:
            pickle.dump((list(requests), poll), out, pickle.HIGHEST_PROTOCOL)
        self.sent = list(requests)

    def results(self) -> AsyncGenerator[tuple[FetchResult, ParsedFeed | None], None]:
        """The results as :func:`monitor.fetch.fetch_many` yields them (bodies
        dropped), each with its parse (None without a body)."""
        assert self.sent is not None and self._results_fd is not None, "send first"
        return self._results(self._results_fd)

    async def _results(self, fd: int
                       ) -> AsyncGenerator[tuple[FetchResult, ParsedFeed | None], None]:
        import pickle

        self._results_fd = None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(fd, "rb", buffering=0))
        try:
            while True:
                try:
                    size = int.from_bytes(await reader.readexactly(_FRAME), "little")
                    if not size:
                        return
                    yield pickle.loads(await reader.readexactly(size))
                except asyncio.IncompleteReadError:
                    from monitor.errors import MonitorError

                    raise MonitorError("the fetch process ended unexpectedly") from None
        finally:
            transport.close()
            self.close()

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        for fd in (self._requests_fd, self._results_fd):
            if fd is not None:
                os.close(fd)
        self._requests_fd = self._results_fd = None
        if self.pid:
            import signal

            with contextlib.suppress(ChildProcessError):
                if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                    os.kill(self.pid, signal.SIGTERM)  # our own child, by its pid
                    os.waitpid(self.pid, 0)
            self.pid = 0


def _read_frame(fd: int) -> bytes | None:
    """One length-prefixed frame, read straight from ``fd`` (None at end of file)."""
    head = _read_exactly(fd, _FRAME)
    return None if head is None else _read_exactly(fd, int.from_bytes(head, "little"))


def _write_frame(out: BinaryIO, obj: object) -> None:
    """``obj`` pickled, as one length-prefixed frame, flushed (blocking while the
    pipe is full)."""
    import pickle

    data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(_FRAME, "little"))
    out.write(data)
    out.flush()


def _read_all(fd: int) -> bytes:
    """Everything until the writer closes ``fd`` (which is then closed)."""
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _fetch_child(requests_fd: int, results_fd: int, prepare: Callable[[], object] | None,
                 fetch_if: Callable[[object], bool] | None) -> None:
    """The fetcher child's whole life: prepare, import, wait for the requests,
    fetch and parse, report."""
    import pickle

    # The requests are read as soon as they come, on a thread of their own: the
    # parent may send them before it reads what ``prepare`` returns, and
    # either may outgrow a pipe's buffer.
    sent: list[bytes] = []
    reader = threading.Thread(target=lambda: sent.append(_read_all(requests_fd)))
    reader.start()
    out = os.fdopen(results_fd, "wb")
    if prepare is not None:
        prepared = prepare()
        _write_frame(out, prepared)
        if fetch_if is not None and not fetch_if(prepared):
            return

    from monitor.fetch import fetch_many, preload

    # The HTTP client, while the parent is busy with its own start-up (this
    # process's only other thread reads a pipe, never TLS: the CA bundle can be
    # left for later).
    preload(skip_ca_bundle=True)
    reader.join()
    if not sent[0]:
        return  # the parent gave up before asking for anything
    requests, poll = pickle.loads(sent[0])
    kinds = {r.url: r.kind for r in requests}

    async def run() -> None:
        async with contextlib.aclosing(fetch_many(requests, poll)) as results:
            async for result in results:
                parsed = _parse(result, kinds.get(result.url, "feed")) if result.ok else None
                # Blocks while the parent is behind: that is the bound.
                _write_frame(out, (replace(result, body=b""), parsed))

    asyncio.run(run())
    out.write(bytes(_FRAME))
    out.flush()


def _parse(result: FetchResult, kind: str) -> ParsedFeed:
    # Imported on the first body: an all-304 poll never imports the parser.
    from monitor.parse import parse_feed

    return parse_feed(result.body, url=result.url, headers=result.headers, kind=kind)
