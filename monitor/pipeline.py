"""The one orchestrator: a poll cycle, from feed URLs to stored hits.

::

    settings.feeds ─► fetch.fetch_many ─► parse.parse_feed ─► match.Matcher ─► Store.commit_polls
      (FeedState:       (FetchResult,       (ParsedFeed,        (Match per      (items, hits and
       validators,       as they             Items)              new item)       the feed's new
       back-off)         complete)                                               state, at once;
                                                                                 each hit's story:
                                                                                 stories.place)

Stages never call each other; only this module calls them, in this order
(and :mod:`monitor.fetch_child`, which runs fetch then parse in a child).
A feed with ``full_text`` adds a step before matching: its new items' article
pages (``fetch.fetch_pages``: robots.txt, back-off, the address guard) read
one at a time (``parse.article``), their lead matched as ``content``. A page
that fails leaves its item as the feed gave it. A Telegram channel's first
poll also reads a few older preview pages (``?before=ID``).
What a fetch means for the feed's state (back-off, Retry-After, 410, flags,
next poll) is decided by :mod:`monitor.feedstate`, pure. Per-feed errors
never leave the loop: they become the feed's stored state (``last_status``,
``error``, ``failures``, ``next_poll``) and one log line. The digest and
notify stages run from the daemon or the ``digest`` command, on the hits this
module stored.

Where the time goes (issue 7, ``bench/README.md``): a one-off ``poll`` may
hand the fetch and parse stages to a child process
(:class:`monitor.fetch_child.ForkedFetcher`), whose results are consumed here
just as in-process ones, in the order fetched. Results that queue up while a
feed is stored are stored together, in one transaction (each feed still whole
or not at all): a cold poll's story placement then reads its window once per
batch instead of once per feed (500 feeds: 356 placements became ~30-60). The daemon
fetches and parses in-process: its cycles are small. A cycle of 304s costs a
request and a row update per feed: the states of feeds that stored nothing are
saved in batches, and the matcher is only compiled when some feed has new items.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias, cast

from monitor import stories
from monitor.errors import StorageError
from monitor.feedstate import fetch_requests, gap_flag, next_state, rhythm_flag
from monitor.models import FeedState, FetchResult, Item, Match, NewItem, ParsedFeed

if TYPE_CHECKING:
    from monitor.fetch import PageMemory
    from monitor.fetch_child import ForkedFetcher
    from monitor.match import Matcher
    from monitor.models import Severity
    from monitor.rules import RuleSet
    from monitor.settings import FeedConfig, Settings
    from monitor.store import Store

log = logging.getLogger(__name__)

#: A Telegram channel's first poll pages back (``?before=ID``) this many pages
#: (about 20 posts each), one after another, this many seconds apart.
TELEGRAM_BACKFILL_PAGES = 3
TELEGRAM_PAGE_PAUSE = 1.0

# Saved states of feeds that stored nothing (304s, failures) wait for one
# transaction per this many feeds; a crash loses at most these, and losing a
# 304's state only means asking again.
_STATE_BATCH = 100
#: Feeds stored in one transaction at most, when their results queue up.
_COMMIT_BATCH = 50


class _Failed:
    """The fetch stream's error, queued behind the results that came before it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


# What the fetch stream queues: a result (parsed by the child, or not), its
# error, or None at its end.
_Got: TypeAlias = "FetchResult | tuple[FetchResult, ParsedFeed | None] | _Failed | None"


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
        # full_text: robots.txt verdicts and hosts backing off, kept between polls
        self._pages: PageMemory | None = None
        self._load_rules: Callable[[], RuleSet]
        if hasattr(matcher, "match"):
            self._matcher = given = cast("Matcher", matcher)
            self._load_rules = lambda: given.rules
        elif callable(matcher):
            self._load_rules = matcher
        else:
            rules = matcher
            self._load_rules = lambda: rules

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
        return asyncio.run(self._poll(feeds, due_only=due_only, on_outcome=on_outcome,
                                      stop=stop, fetcher=fetcher))

    async def _poll(self, feeds: Sequence[FeedConfig] | None, *, due_only: bool,
                    on_outcome: Callable[[FeedOutcome, int, int], None] | None,
                    stop: threading.Event | None,
                    fetcher: ForkedFetcher | None) -> PollReport:
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
                fetcher.send(requests, self.settings.poll)
        todo = [by_url[r.url] for r in requests]
        outcomes: list[FeedOutcome] = []
        unsaved: list[FeedState] = []

        async def consume() -> None:
            stream: AsyncGenerator[FetchResult | tuple[FetchResult, ParsedFeed | None], None]
            if fetcher is not None:
                stream = fetcher.results()
            else:
                from monitor.fetch import fetch_many  # not imported when a child fetches

                stream = fetch_many(requests, self.settings.poll)
            # The results queue up while feeds are stored: those that arrived by the
            # time one is handled are stored with it, in one transaction (a cold
            # poll's placement then reads its window once per batch, not per feed);
            # one arriving alone is stored at once.
            queue: asyncio.Queue[_Got] = asyncio.Queue()

            async def produce() -> None:
                try:
                    async with contextlib.aclosing(stream) as results:
                        async for got in results:
                            queue.put_nowait(got)
                except Exception as e:  # the consumer raises it, after storing what came
                    queue.put_nowait(_Failed(e))
                else:
                    queue.put_nowait(None)

            producer = asyncio.ensure_future(produce())
            try:
                while True:
                    got: _Got = await queue.get()
                    batch: list[tuple[FeedOutcome, tuple[FeedState, list[NewItem]] | None]] = []
                    while got is not None and not isinstance(got, _Failed):
                        if isinstance(got, tuple):  # fetched and parsed by the child
                            result, parsed = got
                            feed = by_url[result.url]
                        else:
                            result, feed = got, by_url[got.url]
                            parsed = _parse(got, feed.kind) if got.ok else None
                        prev = states.get(feed.url) or FeedState(url=feed.url)
                        batch.append(await self._handle(feed, prev, result, parsed, unsaved))
                        if len(batch) >= _COMMIT_BATCH or (stop is not None and stop.is_set()):
                            break
                        await asyncio.sleep(0)  # the producer queues what has arrived
                        if queue.empty():
                            break
                        got = queue.get_nowait()
                    for outcome in self._commit(batch):
                        outcomes.append(outcome)
                        if on_outcome is not None:
                            on_outcome(outcome, len(outcomes), len(todo))
                    if len(unsaved) >= _STATE_BATCH:
                        self.store.save_feed_states(unsaved)
                        unsaved.clear()
                    if isinstance(got, _Failed):
                        raise got.error
                    if got is None or (stop is not None and stop.is_set()):
                        return
            finally:
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer

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

    async def _handle(self, feed: FeedConfig, prev: FeedState, result: FetchResult,
                      parsed: ParsedFeed | None, unsaved: list[FeedState]
                      ) -> tuple[FeedOutcome, tuple[FeedState, list[NewItem]] | None]:
        """Match one fetched, parsed feed; never raises for the feed's own faults.
        Its outcome, with what it has to store (its new state and items: see
        :meth:`_commit`); a state with nothing else to store is appended to
        ``unsaved`` instead."""
        interval = self.settings.feed_interval(feed)
        jitter = random.uniform(0, 0.1)
        new: list[NewItem] = []
        newest = None
        gap = None
        articles: tuple[int, str | None] = (0, None)
        if (feed.kind == "telegram" and prev.last_new_item is None and parsed is not None
                and parsed.is_feed and parsed.items):
            parsed = await self._older_posts(feed, parsed)
        if parsed is not None and parsed.is_feed and parsed.items:
            new, newest, gap, articles = await self._new_items(feed, prev, parsed, result)
        now = self.clock()
        state = next_state(prev, result, parsed, now=now, interval=interval,
                           poll=self.settings.poll, new_items=len(new), newest=newest,
                           gap=gap, jitter=jitter)
        if articles[0]:
            state = replace(state, article_failures=state.article_failures + articles[0],
                            article_error=articles[1])
        self._log_change(feed, prev, state, parsed)
        if not new:
            unsaved.append(state)
        return FeedOutcome(url=feed.url, name=feed.label, status=result.last_status,
                           error=state.error), (state, new) if new else None

    def _commit(self, batch: Sequence[tuple[FeedOutcome, tuple[FeedState, list[NewItem]] | None]]
                ) -> list[FeedOutcome]:
        """Store the new items of a batch of handled feeds, atomically; their
        outcomes, with what was stored."""
        polls = [poll for _, poll in batch if poll is not None]
        if not polls:
            return [outcome for outcome, _ in batch]
        window = timedelta(hours=stories.PLACE["window_hours"])
        try:
            done = self.store.commit_polls(polls, self._rule_info, self.clock(),
                                           place=stories.place, story_window=window)
        except StorageError:
            if len(polls) == 1:
                raise
            # One feed at a time, as far as it goes: a batch may need more room
            # than a nearly full disk has left, where single feeds still fit.
            done = [self.store.commit_poll(state, new, self._rule_info, self.clock(),
                                           place=stories.place, story_window=window)
                    for state, new in polls]
        stored = iter(done)
        out = []
        for outcome, poll in batch:
            if poll is not None:
                items, hits = next(stored)
                outcome = replace(outcome, new_items=items, hits=tuple(sorted(hits.items())))
            out.append(outcome)
        return out

    async def _new_items(self, feed: FeedConfig, prev: FeedState, parsed: ParsedFeed,
                         result: FetchResult
                         ) -> tuple[list[NewItem], datetime | None, str | None,
                                    tuple[int, str | None]]:
        """The entries not stored yet, matched (with their article's text where the
        feed has full_text); the newest date; a gap warning; the article pages that
        failed, and the last one's error."""
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
        gap = gap_flag(prev, dated, all_new=len(fresh) == len(entries))
        if gap:
            log.warning("%s: every entry is new and the oldest is newer than the newest seen "
                        "before: %s", feed.label, gap)
        printed: set[str] = set(known_prints)
        # An entry republished under a new id (same title and summary) is stored,
        # but is not a new hit: it is neither matched nor its article fetched.
        to_match: set[str] = set()
        for item in fresh:
            if item.fingerprint not in printed:
                printed.add(item.fingerprint)
                to_match.add(item.guid)
        articles: tuple[int, str | None] = (0, None)
        mode = self.settings.feed_full_text(feed)
        wanted = [i for i in fresh if i.guid in to_match] if mode != "off" else []
        if mode == "topic":
            wanted = [i for i in wanted if self._names_a_topic_only(i)]
        if wanted:
            contents, articles = await self._articles(
                wanted, result.final_url or feed.url, feed.label,
                telegram=feed.kind == "telegram")
            fresh = [replace(i, content=contents[i.guid]) if i.guid in contents else i
                     for i in fresh]
        new: list[NewItem] = []
        for item in fresh:
            if item.guid not in to_match:
                new.append(NewItem(item))
                continue
            matches = self.matcher.match(item.title, item.summary, item.content)
            if item.content:
                matches = [_with_sentences(m, item.content) for m in matches]
            new.append(NewItem(item, tuple(matches)))
        return new, newest, gap, articles

    def _names_a_topic_only(self, item: Item) -> bool:
        """Whether the feed's text of ``item`` names some rule's topic, yet no rule
        hits it: the items whose article page full_text = "topic" fetches."""
        if self.matcher.match(item.title, item.summary):
            return False
        return bool(self._topic_matcher.match(item.title, item.summary))

    @functools.cached_property
    def _topic_matcher(self) -> Matcher:
        """The rules without their require groups: a hit names a topic (its
        exclusions and context still apply)."""
        from monitor.match import Matcher
        from monitor.rules import RuleSet

        return Matcher(RuleSet(tuple(replace(r, require=()) for r in self.rules.rules)))

    async def _older_posts(self, feed: FeedConfig, parsed: ParsedFeed) -> ParsedFeed:
        """A channel's first poll: the posts of up to TELEGRAM_BACKFILL_PAGES
        older preview pages added to ``parsed``. A page that fails or brings no
        older post ends the paging; what was read is kept."""
        from monitor.fetch import fetch_many
        from monitor.models import FetchRequest
        from monitor.parse.telegram import older_page_url

        items = list(parsed.items)
        seen = {i.guid for i in items}
        for _ in range(TELEGRAM_BACKFILL_PAGES):
            url = older_page_url(feed.url, items)
            if url is None:
                break
            await asyncio.sleep(TELEGRAM_PAGE_PAUSE)  # politeness between pages
            got = [r async for r in fetch_many([FetchRequest(url, kind="telegram")],
                                               self.settings.poll)]
            if not got or not got[0].ok:
                log.debug("%s: older posts not read: %s", feed.label,
                          got[0].error if got else "no result")
                break
            older = _parse(got[0], "telegram")
            fresh = [i for i in older.items if i.guid not in seen]
            if not older.is_feed or not fresh:
                break
            # The items name the channel's URL, not the page's.
            items += [replace(i, feed_url=parsed.url) for i in fresh]
            seen.update(i.guid for i in fresh)
        if len(items) > len(parsed.items):
            log.info("%s: first poll: %d older posts read from earlier pages", feed.label,
                     len(items) - len(parsed.items))
        return replace(parsed, items=tuple(items))

    async def _articles(self, entries: Sequence[Item], feed_where: str, label: str, *,
                        telegram: bool = False
                        ) -> tuple[dict[str, str], tuple[int, str | None]]:
        """Each entry's article text, by guid, where its page could be fetched and
        read; how many could not, and the last reason. Pages are fetched
        concurrently (:func:`monitor.fetch.fetch_pages`) and read one at a time,
        off the event loop; a page is dropped once read. A Telegram post's page
        is the article it links to (its own t.me page holds nothing more)."""
        from monitor.fetch import PageMemory, fetch_pages
        from monitor.parse.article import extract_text

        if self._pages is None:
            self._pages = PageMemory()
        self._pages.forget_expired(time.monotonic())
        by_link: dict[str, list[str]] = {}
        for entry in entries:
            target = entry.article_link or (None if telegram else entry.link)
            if target:
                by_link.setdefault(target, []).append(entry.guid)
        links = list(by_link)
        out: dict[str, str] = {}
        failed, last = 0, None
        stream = fetch_pages(links, feed_where, self.settings.poll, self._pages)
        async with contextlib.aclosing(stream) as pages:
            async for i, page in pages:
                link = links[i]
                if page.ok:
                    try:
                        text = await asyncio.to_thread(extract_text, page.body,
                                                       headers=page.headers,
                                                       url=page.final_url)
                        error = None if text else "no article text found on the page"
                    except Exception as e:  # a page the extractor chokes on: the item stays
                        text, error = "", f"cannot read the page: {type(e).__name__}: {e}"
                else:
                    text, error = "", page.error or str(page.last_status)
                del page  # its body, before the next one is read
                if error is not None:
                    failed += 1
                    last = f"{link}: {error}"[:500]
                    log.debug("article %s: %s", link, error)
                    continue
                for guid in by_link[link]:
                    out[guid] = text
        if failed:
            log.info("%s: %d of %d article pages not read (the items are matched on the "
                     "feed's text); last: %s", label, failed, len(links), last)
        return out, (failed, last)

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


def _with_sentences(match: Match, content: str) -> Match:
    """``match`` with each piece of evidence in ``content`` carrying its sentence,
    which is what a digest shows of an article."""
    if not any(e.field == "content" for e in match.evidence):
        return match
    from monitor.highlight import sentence_at

    evidence = []
    for e in match.evidence:
        if e.field == "content":
            start, end = sentence_at(content, e.start, e.end)
            e = replace(e, context=content[start:end], context_start=start)
        evidence.append(e)
    return replace(match, evidence=tuple(evidence))


def _until(when: datetime | None, now: datetime | None) -> str:
    if when is None or now is None:
        return "never"
    from monitor.timespec import format_duration

    return format_duration(max(0.0, (when - now).total_seconds()))


def _parse(result: FetchResult, kind: str) -> ParsedFeed:
    from monitor.parse import parse_feed

    return parse_feed(result.body, url=result.url, headers=result.headers, kind=kind)
