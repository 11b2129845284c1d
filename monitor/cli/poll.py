"""The ``poll`` command: every feed once (fetch, parse, match, store), then exit.

The work is :class:`monitor.pipeline.Poller`'s; this module starts it the fast
way (bench/README.md): the fetch child is forked before anything heavy is
imported, and is sent the feeds' stored validators, read without SQLAlchemy,
while this process opens the store.

    news-monitor poll [-v] [-q]
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from monitor.cli import common
from monitor.errors import MonitorError, Problem

if TYPE_CHECKING:
    from monitor.fetch_child import ForkedFetcher
    from monitor.rules import RuleSet
    from monitor.settings import Settings


def cmd_poll(args: argparse.Namespace) -> int:
    from monitor.fetch_child import ForkedFetcher
    from monitor.pipeline import FeedOutcome, Poller

    settings = common.settings(args)
    common.setup_logging(args, settings)
    # Forked now, while this process is small and has no thread, socket or
    # database open: the child checks the rules and imports the HTTP client
    # while this process opens the store, then fetches and parses while this
    # one matches and stores.
    # Invalid rules (a list of problems) stop the child before it fetches anything.
    fetcher = (ForkedFetcher.start(functools.partial(_pickled_rules, settings),
                                   fetch_if=lambda rules: not isinstance(rules, list))
               if settings.feeds else None)
    try:
        rules: RuleSet | Callable[[], RuleSet]
        if fetcher is None:
            rules = common.rules(settings)
            store = common.store(settings)
        else:
            _send_early(fetcher, settings)
            store = common.store(settings)
            loaded = fetcher.prepared()
            if isinstance(loaded, list):  # the rules are invalid: exit 1, polling nothing
                store.close()
                raise common.fail(loaded)
            assert isinstance(loaded, bytes)  # what _pickled_rules gives when they are valid
            import pickle

            # Unpickled (importing the rules' modules) only if some feed has new items.
            rules = functools.partial(pickle.loads, loaded)
    except BaseException:
        if fetcher is not None:
            fetcher.close()
        raise
    bar = _Progress(sys.stderr) if sys.stderr.isatty() and not args.quiet else None

    def progress(outcome: FeedOutcome, done: int, total: int) -> None:
        if bar:
            bar.update(done, total)
        if args.verbose or not outcome.ok:
            line = (f"{'ok  ' if outcome.ok else 'FAIL'} {common.safe(outcome.name)}: "
                    f"{outcome.status} "
                    + (f"{outcome.new_items} new" if outcome.ok else common.safe(outcome.error)))
            if bar:
                bar.clear()
            print(line, file=sys.stderr)

    try:
        # The rules, not a Matcher: it is compiled only if some feed has new items.
        report = Poller(settings, store, rules).poll(on_outcome=progress, fetcher=fetcher)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        if bar:
            bar.clear()
        if fetcher is not None:
            fetcher.close()
        store.close()
    print(report.summary())
    # Every feed failed (a network down, a proxy refusing): a cycle that got
    # nothing is a failure for cron and for ops scripts, whatever it printed.
    return 1 if report.outcomes and not report.ok else 0


def _pickled_rules(settings: Settings) -> bytes | list[Problem]:
    """:func:`common.rules_or_problems` for another process: the RuleSet comes
    pickled, so that a process that never needs it (a poll of 304s) never
    imports its modules."""
    import pickle

    rules = common.rules_or_problems(settings)
    return rules if isinstance(rules, list) else pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)


def _send_early(fetcher: ForkedFetcher, settings: Settings) -> None:
    """Start the fetch child on the feeds' stored validators, read without
    SQLAlchemy, so that it fetches while this process imports SQLAlchemy and
    opens the store (on an all-304 poll that was the critical path). A store
    that is new or needs a migration is left to the usual way."""
    from monitor.feedstate import fetch_requests
    from monitor.store import direct

    try:
        validators = direct.feed_validators(settings.storage_url,
                                            timeout=settings.storage_timeout)
    except MonitorError as e:  # unreachable: say so now, not after another timeout
        raise common.fail(str(e)) from e
    if validators is not None:
        fetcher.send(fetch_requests(settings.feeds, validators), settings.poll)


class _Progress:
    """A one-line progress bar on a terminal (stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def update(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} feeds")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("poll", help="poll every feed once, match and store, then exit",
                       description="Poll every feed once (due or not), match the new items "
                                   "and store the hits, then exit; nothing is sent. Exit 1 "
                                   "when every feed failed, or the cycle could not run.")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per feed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_poll)
