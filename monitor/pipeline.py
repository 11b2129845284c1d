"""The one orchestrator: a poll cycle, from feed URLs to stored hits.

::

    settings.feeds ─► fetch.fetch_many ─► parse.parse_feed ─► match.Matcher ─► Store.commit_poll
      (FeedState:       (FetchResult,       (ParsedFeed,        (Match per      (items, hits and
       validators,       as they             Items)              new item)       the feed's new
       back-off)         complete)                                               state, at once)

Stages never call each other; only this module calls them, in this order.
Per-feed errors never leave the loop: they become the feed's stored state
(``last_status``, ``error``, ``failures``, ``next_poll``) and one log line.
The digest and notify stages run from the daemon or the ``digest`` command,
on the hits this module stored.

Where the time goes (issue 7, ``bench/README.md``): a one-off ``poll`` runs
the fetch and parse stages in a child process (:class:`ForkedFetcher`),
forked before this process imports its database layer, so that on two cores
fetching and parsing overlap start-up, matching and storing; results are
still handled one feed at a time, in the order fetched. The daemon fetches
and parses in-process: its cycles are small. A cycle of 304s costs a request
and a row update per feed: the states of feeds that stored nothing are saved
in batches, and the matcher is only compiled when some feed has new items.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

from monitor.errors import StorageError
from monitor.models import FeedState, FetchRequest, FetchResult, NewItem, ParsedFeed

if TYPE_CHECKING:
    from monitor.fetch import FetchOptions
    from monitor.match import Matcher
    from monitor.models import Severity
    from monitor.rules import RuleSet
    from monitor.settings import FeedConfig, PollConfig, Settings
    from monitor.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one feed's poll did."""

    url: str
    name: str
    status: int | str | None
    new_items: int = 0
    hits: tuple[tuple[str, int], ...] = ()  # new hits stored, by rule id
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def new_hits(self) -> int:
        return sum(n for _, n in self.hits)


@dataclass(frozen=True, slots=True)
class PollReport:
    outcomes: tuple[FeedOutcome, ...]
    skipped: int  # disabled feeds (410 Gone) and feeds not yet due
    seconds: float

    @property
    def ok(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(not o.ok for o in self.outcomes)

    @property
    def new_items(self) -> int:
        return sum(o.new_items for o in self.outcomes)

    @property
    def new_hits(self) -> int:
        return sum(o.new_hits for o in self.outcomes)

    @property
    def hits_by_rule(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for o in self.outcomes:
            out.update(dict(o.hits))
        return dict(out)

    def summary(self) -> str:
        line = (f"polled {len(self.outcomes)} feeds in {self.seconds:.1f}s: {self.ok} ok, "
                f"{self.failed} failed; {self.new_items} new items, {self.new_hits} new hits")
        return line + (f"; {self.skipped} skipped" if self.skipped else "")


def backoff_delay(failures: int, interval: float, max_backoff: float,
                  retry_after: float | None = None) -> float:
    """Seconds until the next try after ``failures`` failures in a row.

    Doubles the feed's interval per failure, up to ``max_backoff``; never
    sooner than the server's Retry-After.
    """
    delay = interval if failures <= 0 else min(max_backoff, interval * 2 ** min(failures, 20))
    delay = max(delay, interval)
    if retry_after is not None:
        # Honour Retry-After, but a far-future date must not park a feed forever.
        delay = max(delay, min(retry_after, max_backoff))
    return delay


def next_state(prev: FeedState, result: FetchResult, parsed: ParsedFeed | None, *,
               now: datetime, interval: float, poll: PollConfig, new_items: int = 0,
               newest: datetime | None = None, jitter: float = 0.0) -> FeedState:
    """The feed's state after a fetch (pure). ``jitter`` is a fraction (0-0.1) of the
    delay added so that feeds polled together drift apart."""
    status = result.last_status
    error = result.error
    if result.ok and parsed is not None and not parsed.is_feed:
        error = parsed.problem or "not a feed"
    elif result.ok or result.not_modified:
        error = None
    elif error is None:
        error = f"HTTP {result.status}" if result.status else "fetch failed"
    failures = 0 if error is None else prev.failures + 1
    delay = backoff_delay(failures, interval, poll.max_backoff, result.retry_after)
    state = replace(
        prev,
        last_polled=now,
        last_status=None if status is None else str(status),
        error=error,
        failures=failures,
        next_poll=now + timedelta(seconds=delay * (1 + jitter)),
    )
    if error is None:
        state = replace(state, last_ok=now)
    if result.ok or result.not_modified:
        # Keep the old validators when a 304 repeats none.
        state = replace(state, etag=result.etag or (prev.etag if result.not_modified else None),
                        last_modified=result.last_modified
                        or (prev.last_modified if result.not_modified else None))
    if result.gone:
        state = replace(state, disabled=f"410 Gone at {now:%Y-%m-%dT%H:%M:%SZ}", next_poll=None)
    if parsed is not None and parsed.title:
        state = replace(state, title=parsed.title[:300])
    if failures >= poll.stale_after_failures:
        state = replace(state, flag=f"failing: {failures} failures in a row")
    elif prev.flag and prev.flag.startswith("failing") and error is None:
        state = replace(state, flag=None)
    if new_items:
        state = replace(state, last_new_item=now)
        if prev.flag and prev.flag.startswith("silent"):
            state = replace(state, flag=None)
    if newest is not None and (prev.newest_entry is None or newest > prev.newest_entry):
        state = replace(state, newest_entry=newest)
    return state


# -- the fetch stage in a child process (one-off polls) -------------------------------

_FRAME = 8  # bytes of length before each pickled FetchResult; 0 ends the stream


class ForkedFetcher:
    """The fetch and parse stages in a child process, forked when a one-off
    ``poll`` starts.

    Such a process spends its first ~0.3 s importing (SQLAlchemy, the rules)
    and reading the store. A child forked before all that imports the HTTP
    client and the parser meanwhile, on another core, then fetches and parses
    while this process matches and stores; the requests may be sent (:meth:`send`)
    as soon as the feeds' validators are read, before SQLAlchemy is imported.
    Results come back over a pipe, one pickled (FetchResult without
    its body, ParsedFeed or None) at a time; the child blocks while the pipe
    is full, so fetched documents cannot pile up (as in-process, where
    handling a result holds the event loop).

    Measured against a pool of parse workers on two cores (issue 7), this
    two-process split was faster and took half the memory.
    Only from a process with no other thread; the daemon fetches in-process.
    One fetch each.
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

    def send(self, requests: Sequence[FetchRequest], options: FetchOptions) -> None:
        """Start fetching now (the caller may still be starting up): :attr:`sent`
        remembers the requests, and :meth:`results` streams their outcome."""
        import pickle

        assert self._requests_fd is not None, "one fetch each"
        fd, self._requests_fd = self._requests_fd, None
        # The child may have ended already (see ``fetch_if``): it says why
        # through prepared().
        with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as out:
            pickle.dump((list(requests), options), out, pickle.HIGHEST_PROTOCOL)
        self.sent = list(requests)

    def results(self) -> AsyncIterator[tuple[FetchResult, ParsedFeed | None]]:
        """The results as :func:`monitor.fetch.fetch_many` yields them (bodies
        dropped), each with its parse (None without a body)."""
        assert self.sent is not None and self._results_fd is not None, "send first"
        return self._results(self._results_fd)

    async def _results(self, fd: int
                       ) -> AsyncIterator[tuple[FetchResult, ParsedFeed | None]]:
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
    requests, options = pickle.loads(sent[0])

    async def run() -> None:
        async with contextlib.aclosing(fetch_many(requests, options)) as results:
            async for result in results:
                parsed = _parse(result) if result.ok else None
                # Blocks while the parent is behind: that is the bound.
                _write_frame(out, (replace(result, body=b""), parsed))

    asyncio.run(run())
    out.write(bytes(_FRAME))
    out.flush()


def _parse(result: FetchResult) -> ParsedFeed:
    from monitor.parse import parse_feed

    return parse_feed(result.body, url=result.url, headers=result.headers)


# Saved states of feeds that stored nothing (304s, failures) wait for one
# transaction per this many feeds; a crash loses at most these, and losing a
# 304's state only means asking again.
_STATE_BATCH = 100


def fetch_options(poll: PollConfig) -> FetchOptions:
    from monitor.fetch import FetchOptions

    return FetchOptions(concurrency=poll.concurrency, per_host=poll.per_host,
                        timeout=poll.timeout, max_bytes=poll.max_bytes,
                        max_redirects=poll.max_redirects)


def fetch_requests(feeds: Iterable[FeedConfig],
                   validators: Mapping[str, tuple[str | None, str | None, bool]]
                   ) -> list[FetchRequest]:
    """A conditional request for each feed not disabled. ``validators``: a
    stored feed's (ETag, Last-Modified, disabled) by URL."""
    out = []
    for f in feeds:
        etag, modified, disabled = validators.get(f.url, (None, None, False))
        if not disabled:
            out.append(FetchRequest(f.url, etag, modified))
    return out


class Poller:
    """Runs poll cycles over configured feeds with one rule set and one store.

    ``matcher`` may also be the :class:`~monitor.rules.RuleSet`, or a function
    returning it: the rules are then only loaded, and the matcher compiled,
    when an item first needs matching, so a cycle of 304s never pays for them.
    """

    def __init__(self, settings: Settings, store: Store,
                 matcher: Matcher | RuleSet | Callable[[], RuleSet], *,
                 clock: Callable[[], datetime] | None = None, owner: str = "poll") -> None:
        self.settings = settings
        self.owner = owner  # who leases due feeds (one name per daemon instance)
        # A lease outlives any fetch (total deadline) plus parse and store time;
        # it is renewed while the cycle lasts (feeds wait behind the concurrency
        # bound), and runs out this long after a dead instance's last renewal.
        self.lease = settings.poll.timeout * 3 + 10
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self._matcher: Matcher | None = None
        self._load_rules: Callable[[], RuleSet]
        if hasattr(matcher, "match"):
            self._matcher = given = matcher  # type: ignore[assignment]
            self._load_rules = lambda: given.rules
        elif callable(matcher):
            self._load_rules = matcher
        else:
            self._load_rules = lambda: matcher  # type: ignore[return-value]

    @functools.cached_property
    def rules(self) -> RuleSet:
        return self._load_rules()

    @functools.cached_property
    def _rule_info(self) -> dict[str, tuple[str, Severity]]:
        return {r.id: (r.version, r.severity) for r in self.rules.rules}

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            from monitor.match import Matcher

            self._matcher = Matcher(self.rules)
        return self._matcher

    def poll(self, feeds: Sequence[FeedConfig] | None = None, *, due_only: bool = False,
             on_outcome: Callable[[FeedOutcome, int, int], None] | None = None,
             stop: threading.Event | None = None,
             fetcher: ForkedFetcher | None = None) -> PollReport:
        """One cycle over ``feeds`` (default: all configured), due or not unless
        ``due_only``. Raises StorageError only when the store cannot be reached at
        all; one feed's failure is reported in its outcome. Setting ``stop``
        ends the cycle early: feeds not yet stored are left for the next one.
        ``fetcher``: fetch in that child process rather than in this one."""
        return asyncio.run(self.poll_async(feeds, due_only=due_only, on_outcome=on_outcome,
                                           stop=stop, fetcher=fetcher))

    async def poll_async(self, feeds: Sequence[FeedConfig] | None = None, *,
                         due_only: bool = False,
                         on_outcome: Callable[[FeedOutcome, int, int], None] | None = None,
                         stop: threading.Event | None = None,
                         fetcher: ForkedFetcher | None = None) -> PollReport:
        from monitor.fetch import fetch_many

        started = time.monotonic()
        feeds = list(self.settings.feeds if feeds is None else feeds)
        self.store.sync_feeds((f.url, f.name) for f in feeds)
        states = self.store.feed_states(f.url for f in feeds)
        now = self.clock()
        by_url = {f.url: f for f in feeds}
        if fetcher is not None and fetcher.sent is not None:
            requests = fetcher.sent  # sent while the caller started, from what it read then
        else:
            chosen = feeds
            if due_only:
                # Through the store, so that daemons sharing it poll each feed once.
                claimed = set(self.store.claim_due_feeds(self.owner, [f.url for f in feeds],
                                                         now=now, lease=self.lease))
                chosen = [f for f in feeds if f.url in claimed]
            requests = fetch_requests(chosen, {
                url: (s.etag, s.last_modified, s.disabled is not None)
                for url, s in states.items()})
            if fetcher is not None:
                fetcher.send(requests, fetch_options(self.settings.poll))
        todo = [by_url[r.url] for r in requests]
        outcomes: list[FeedOutcome] = []
        unsaved: list[FeedState] = []

        async def consume() -> None:
            stream = fetcher.results() if fetcher is not None else \
                fetch_many(requests, fetch_options(self.settings.poll))
            async with contextlib.aclosing(stream) as results:
                async for got in results:
                    if isinstance(got, tuple):  # fetched and parsed by the child
                        result, parsed = got
                    else:
                        result, parsed = got, _parse(got) if got.ok else None
                    feed = by_url[result.url]
                    prev = states.get(feed.url) or FeedState(url=feed.url)
                    outcome = self._handle(feed, prev, result, parsed, unsaved)
                    outcomes.append(outcome)
                    if len(unsaved) >= _STATE_BATCH:
                        self.store.save_feed_states(unsaved)
                        unsaved.clear()
                    if on_outcome is not None:
                        on_outcome(outcome, len(outcomes), len(todo))
                    if stop is not None and stop.is_set():
                        return

        async def watch_stop(task: asyncio.Task[None], stop: threading.Event) -> None:
            # A stop request cancels fetches in flight; each feed's results are
            # committed whole or not at all, so nothing is left half-written.
            while not stop.is_set() and not task.done():
                await asyncio.sleep(0.1)
            task.cancel()

        async def renew_leases() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    self.store.renew_feed_leases(self.owner, now=self.clock(), lease=self.lease)
                except StorageError as e:  # the cycle's own commits will say more
                    log.warning("cannot renew feed leases: %s", e)

        task = asyncio.ensure_future(consume())
        helpers = [asyncio.ensure_future(watch_stop(task, stop))] if stop is not None else []
        if due_only:
            helpers.append(asyncio.ensure_future(renew_leases()))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            for helper in helpers:
                helper.cancel()
        # Outside the finally: when the store failed, do not try it once more.
        self.store.save_feed_states(unsaved)
        return PollReport(tuple(outcomes), skipped=len(feeds) - len(todo),
                          seconds=time.monotonic() - started)

    def _handle(self, feed: FeedConfig, prev: FeedState, result: FetchResult,
                parsed: ParsedFeed | None, unsaved: list[FeedState]) -> FeedOutcome:
        """Match and store one fetched, parsed feed; never raises for the feed's own
        faults. A state with nothing else to store is appended to ``unsaved``."""
        now = self.clock()
        interval = self.settings.feed_interval(feed)
        jitter = random.uniform(0, 0.1)
        new: list[NewItem] = []
        newest = None
        gap = None
        if parsed is not None and parsed.is_feed and parsed.items:
            new, newest, gap = self._new_items(feed, prev, parsed, now)
        state = next_state(prev, result, parsed, now=now, interval=interval,
                           poll=self.settings.poll, new_items=len(new), newest=newest,
                           jitter=jitter)
        if gap and not state.flag:
            state = replace(state, flag=gap)
        elif new and state.flag and state.flag.startswith("gap") and not gap:
            state = replace(state, flag=None)
        self._log_change(feed, prev, state, parsed)
        stored, hits = 0, dict[str, int]()
        if new:
            stored, hits = self.store.commit_poll(state, new, self._rule_info, now)
        else:
            unsaved.append(state)
        return FeedOutcome(url=feed.url, name=feed.label, status=result.last_status,
                           new_items=stored, hits=tuple(sorted(hits.items())),
                           error=state.error)

    def _new_items(self, feed: FeedConfig, prev: FeedState, parsed: ParsedFeed,
                   now: datetime) -> tuple[list[NewItem], datetime | None, str | None]:
        """The entries not stored yet, matched; the newest date; a gap warning."""
        # One entry per guid: a feed that repeats a guid keeps its first entry.
        entries = list({i.guid: i for i in reversed(parsed.items)}.values())[::-1]
        if prev.last_new_item is None:
            # Nothing of this feed was ever stored (storing sets last_new_item in
            # the same transaction): every entry is new, no need to ask the store.
            # Should another instance store them first, commit_poll skips them.
            unseen: set[str] = {i.guid for i in entries}
            known_prints: set[str] = set()
        else:
            unseen, known_prints = self.store.unseen(
                feed.url, [(i.guid, i.fingerprint) for i in entries])
        fresh = [i for i in entries if i.guid in unseen]
        dated = [i.published for i in parsed.items if i.published is not None]
        newest = max(dated) if dated else None
        gap = None
        if fresh and len(fresh) == len(entries) and prev.newest_entry is not None and dated \
                and min(dated) > prev.newest_entry:
            gap = (f"gap: entries published between {prev.newest_entry:%Y-%m-%dT%H:%MZ} and "
                   f"{min(dated):%Y-%m-%dT%H:%MZ} may have scrolled out unseen")
            log.warning("%s: every entry is new and the oldest is newer than the newest seen "
                        "before: %s", feed.label, gap)
        new: list[NewItem] = []
        printed: set[str] = set(known_prints)
        for item in fresh:
            # An entry republished under a new id (same title and summary) is
            # stored, but is not a new hit.
            if item.fingerprint in printed:
                new.append(NewItem(item))
                continue
            printed.add(item.fingerprint)
            new.append(NewItem(item, tuple(self.matcher.match(item.title, item.summary))))
        return new, newest, gap

    def _log_change(self, feed: FeedConfig, prev: FeedState, state: FeedState,
                    parsed: ParsedFeed | None) -> None:
        """Log a failure once when it starts or changes, and once when it ends."""
        if state.error and state.error != prev.error:
            log.warning("%s: %s (%s); next try in %s", feed.label, state.error,
                        state.last_status, _until(state.next_poll, state.last_polled))
        elif state.error:
            log.debug("%s: still failing (%d in a row): %s", feed.label, state.failures,
                      state.error)
        elif prev.error:
            log.info("%s: recovered after %d failures", feed.label, prev.failures)
        if state.flag and state.flag.split(":")[0] != (prev.flag or "").split(":")[0]:
            log.warning("%s: %s", feed.label, state.flag)
        if state.disabled and not prev.disabled:
            log.warning("%s: disabled: %s", feed.label, state.disabled)
        if parsed is not None and parsed.is_feed and parsed.problem:
            log.debug("%s: feed is malformed but readable: %s", feed.label, parsed.problem)


def rhythm_flag(published: Sequence[datetime], now: datetime) -> str | None:
    """"silent: ..." when a feed has published nothing for much longer than usual.

    Its own history says what is usual: the median gap between its last
    entries. Silent means four such gaps, and at least a day, without news,
    so a feed that posts weekly is not flagged on day two.
    """
    if len(published) < 5:
        return None  # too little history to know its rhythm
    times = sorted(published, reverse=True)
    gaps = sorted((a - b).total_seconds() for a, b in itertools.pairwise(times))
    usual = gaps[len(gaps) // 2]
    quiet = (now - times[0]).total_seconds()
    if quiet > max(4 * usual, 86400.0):
        from monitor.settings import format_duration

        return (f"silent: nothing new for {format_duration(quiet)}; it usually publishes "
                f"every {format_duration(max(usual, 1))}")
    return None


def check_rhythms(store: Store, settings: Settings, now: datetime) -> list[tuple[str, str]]:
    """Flag feeds gone silent (and clear the flag of those back), once each.

    Returns (feed label, flag) for every feed newly flagged.
    """
    recent = store.recent_published()
    states = store.feed_states(f.url for f in settings.feeds)
    flagged = []
    for feed in settings.feeds:
        st = states.get(feed.url)
        if st is None or (st.flag and not st.flag.startswith("silent")):
            continue  # never polled, or a graver flag already shown
        flag = rhythm_flag(recent.get(feed.url, []), now)
        if flag and not st.flag:
            log.warning("%s: %s", feed.label, flag)
            store.set_flag(feed.url, flag)
            flagged.append((feed.label, flag))
        elif not flag and st.flag:
            store.set_flag(feed.url, None)
    return flagged


def _until(when: datetime | None, now: datetime | None) -> str:
    if when is None or now is None:
        return "never"
    from monitor.settings import format_duration

    return format_duration(max(0.0, (when - now).total_seconds()))


def match_items(matcher: Matcher, records: Iterable[dict[str, object]]
                ) -> Iterable[tuple[dict[str, object], list]]:
    """Run the rules over plain records (``match``, ``rules backtest``): no store."""
    for rec in records:
        yield rec, matcher.match(str(rec.get("title") or ""), str(rec.get("summary") or ""))
