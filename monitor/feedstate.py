"""The feed-state policy: what a poll's outcome means for a feed (pure, no I/O).

Given a feed's stored :class:`~monitor.models.FeedState` and what its fetch
and parse gave, :func:`next_state` decides its next state: failures in a row
and the back-off (:func:`backoff_delay`: a minute after a first failure,
doubling; Retry-After honoured but capped),
the validators to send next time, disabling on 410 Gone, and the health
flags (``failing``, ``gap``, ``silent``). :func:`fetch_requests` turns stored
states into the next conditional requests. The orchestrator
(:mod:`monitor.pipeline`) reads and stores the states and logs the changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.models import FeedState, FetchRequest, FetchResult, ParsedFeed

if TYPE_CHECKING:
    from monitor.settings import FeedConfig, PollConfig


def fetch_requests(feeds: Iterable[FeedConfig],
                   validators: Mapping[str, tuple[str | None, str | None, bool]]
                   ) -> list[FetchRequest]:
    """A conditional request for each feed not disabled. ``validators``: a
    stored feed's (ETag, Last-Modified, disabled) by URL."""
    out = []
    for f in feeds:
        etag, modified, disabled = validators.get(f.url, (None, None, False))
        if not disabled:
            out.append(FetchRequest(f.url, etag, modified, f.kind))
    return out


#: The wait after a feed's first failure: a blip (a DNS hiccup at start-up) costs a minute.
FIRST_RETRY = 60.0


def backoff_delay(failures: int, interval: float, max_backoff: float,
                  retry_after: float | None = None) -> float:
    """Seconds until the next try after ``failures`` failures in a row.

    Gentle at first, then as patient as the feed deserves: a minute after the
    first failure, doubling (1 min, 2 min, 4 min ...) up to the feed's
    interval, then doubling the interval per failure up to ``max_backoff``
    (never below the interval). Never sooner than the server's Retry-After.
    """
    if failures <= 0:
        return interval
    ceiling = max(max_backoff, interval)
    delay = min(FIRST_RETRY, interval)
    for _ in range(1, failures):
        if delay >= ceiling:
            break
        # Below the interval, the doubling stops at it; from there, it goes on.
        delay = delay * 2 if delay >= interval else min(delay * 2, interval)
    delay = min(delay, ceiling)
    if retry_after is not None:
        # Honour Retry-After, but a far-future date must not park a feed forever.
        delay = max(delay, min(retry_after, ceiling))
    return delay


def next_state(prev: FeedState, result: FetchResult, parsed: ParsedFeed | None, *,
               now: datetime, interval: float, poll: PollConfig, new_items: int = 0,
               newest: datetime | None = None, gap: str | None = None,
               jitter: float = 0.0) -> FeedState:
    """The feed's state after a fetch. ``gap``: the :func:`gap_flag` of its new
    entries; ``jitter`` is a fraction (0-0.1) of the delay added so that feeds
    polled together drift apart."""
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
    # A gap is shown unless a graver flag is; new entries with no gap clear it.
    if gap and not state.flag:
        state = replace(state, flag=gap)
    elif new_items and state.flag and state.flag.startswith("gap") and not gap:
        state = replace(state, flag=None)
    return state


def gap_flag(prev: FeedState, published: Sequence[datetime], *, all_new: bool) -> str | None:
    """"gap: ..." when entries may have scrolled out of the feed unseen: every
    entry is new (``all_new``) and the oldest ``published`` date is newer than
    the newest entry seen before."""
    if not (all_new and published and prev.newest_entry is not None):
        return None
    oldest = min(published)
    if oldest <= prev.newest_entry:
        return None
    return (f"gap: entries published between {prev.newest_entry:%Y-%m-%dT%H:%MZ} and "
            f"{oldest:%Y-%m-%dT%H:%MZ} may have scrolled out unseen")


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
        from monitor.timespec import format_duration

        return (f"silent: nothing new for {format_duration(quiet)}; it usually publishes "
                f"every {format_duration(max(usual, 1))}")
    return None
