"""The feed-state policy's pure decisions: back-off, next state, health flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.feedstate import backoff_delay, gap_flag, next_state, rhythm_flag
from monitor.models import FeedState, FetchResult, ParsedFeed
from monitor.settings import PollConfig

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLL = PollConfig(interval=900, max_backoff=86400, stale_after_failures=3)


def after(prev: FeedState, result: FetchResult, parsed: ParsedFeed | None = None,
          **kw: Any) -> FeedState:
    return next_state(prev, result, parsed, now=NOW, interval=900, poll=POLL, **kw)


def test_backoff_starts_gently_then_doubles_up_to_the_ceiling_and_honours_retry_after(
        ) -> None:
    assert backoff_delay(0, 900, 86400) == 900
    # A minute after a first failure, doubling up to the interval, then doubling it.
    assert [backoff_delay(n, 900, 86400) for n in range(1, 9)] == [
        60, 120, 240, 480, 900, 1800, 3600, 7200]
    assert backoff_delay(30, 900, 86400) == 86400
    assert backoff_delay(10**6, 900, 86400) == 86400
    assert backoff_delay(1, 900, 86400, retry_after=10_000) == 10_000
    assert backoff_delay(1, 900, 86400, retry_after=30) == 60
    assert backoff_delay(1, 900, 86400, retry_after=10**9) == 86400  # no parking forever


def test_backoff_of_short_intervals_and_low_ceilings() -> None:
    # A feed polled every 30 s waits its interval first, then doubles it.
    assert [backoff_delay(n, 30, 86400) for n in (1, 2, 3)] == [30, 60, 120]
    # A ceiling below the interval: a failing feed is never polled more often than a healthy one.
    assert [backoff_delay(n, 900, 600) for n in (4, 5, 6, 20)] == [480, 900, 900, 900]
    assert backoff_delay(1, 900, 600, retry_after=10**9) == 900


def test_success_resets_failures_and_keeps_validators_on_304() -> None:
    prev = FeedState("u", etag='"a"', last_modified="x", failures=2, error="boom")
    ok = after(prev, FetchResult("u", 200, b"", etag='"b"', last_modified="y"))
    assert (ok.failures, ok.error, ok.etag, ok.last_ok) == (0, None, '"b"', NOW)
    same = after(prev, FetchResult("u", 304))
    assert (same.etag, same.last_modified, same.last_status) == ('"a"', "x", "304")
    assert same.next_poll == NOW + timedelta(seconds=900)


def test_failures_back_off_flag_once_and_recover() -> None:
    state = FeedState("u", etag='"a"')
    for n in (1, 2, 3):
        state = after(state, FetchResult("u", None, error_kind="timeout", error="took 20s"))
        assert state.failures == n and state.last_status == "timeout"
    assert state.etag == '"a"'  # a failure keeps the validators
    assert state.next_poll == NOW + timedelta(seconds=240)  # 1 min, 2 min, 4 min
    assert state.flag == "failing: 3 failures in a row"
    healed = after(state, FetchResult("u", 304))
    assert (healed.failures, healed.flag, healed.error) == (0, None, None)


def test_gone_disables_and_no_feed_is_an_error() -> None:
    gone = after(FeedState("u"), FetchResult("u", 410, error_kind="http", error="HTTP 410"))
    assert gone.disabled and gone.next_poll is None
    page = ParsedFeed("u", None, None, None, (), is_feed=False,
                      problem="not a feed: looks like an HTML page")
    bad = after(FeedState("u"), FetchResult("u", 200, b"<html>"), page)
    assert (bad.last_status, bad.error, bad.failures) == ("200", page.problem, 1)


def test_rhythm_flag_follows_the_feeds_own_history() -> None:
    hourly = [NOW - timedelta(hours=h) for h in range(30, 50)]
    silent = rhythm_flag(hourly, NOW)
    assert silent is not None and silent.startswith("silent")
    assert rhythm_flag([NOW - timedelta(hours=h) for h in range(2, 22)], NOW) is None
    weekly = [NOW - timedelta(days=7 * w + 3) for w in range(10)]
    assert rhythm_flag(weekly, NOW) is None  # three days quiet is normal for a weekly
    assert rhythm_flag(hourly[:3], NOW) is None  # too little history


def test_a_gap_is_flagged_unless_graver_and_cleared_by_news_without_one() -> None:
    seen = FeedState("u", newest_entry=NOW - timedelta(days=2))
    later = [NOW - timedelta(hours=h) for h in (1, 2, 3)]
    gap = gap_flag(seen, later, all_new=True)
    assert gap is not None and gap.startswith("gap: entries published between")
    assert gap_flag(seen, later, all_new=False) is None  # some entries were seen
    assert gap_flag(seen, [NOW - timedelta(days=3)], all_new=True) is None  # overlaps
    assert gap_flag(FeedState("u"), later, all_new=True) is None  # nothing seen before
    ok = FetchResult("u", 200, b"")
    flagged = after(seen, ok, new_items=3, gap=gap)
    assert flagged.flag == gap
    failing = FeedState("u", flag="failing: 5 failures in a row", failures=5)
    assert after(failing, FetchResult("u", None, error="x"), gap=gap).flag == \
        "failing: 6 failures in a row"  # the graver flag stays
    assert after(flagged, ok, new_items=1).flag is None  # news again, no gap
    assert after(flagged, FetchResult("u", 304)).flag == gap  # nothing new: kept
