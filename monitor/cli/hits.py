"""The ``hits`` command: the stored hits, as a table or JSON Lines.

    news-monitor hits [--since WHEN] [--rule ID] [--limit N] [--format jsonl]
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.settings import Settings

#: From this many columns on, the table shows when each hit was matched too.
WIDE = 120


def cmd_hits(args: argparse.Namespace) -> int:
    from monitor.store import direct

    settings = common.settings(args)
    query = {"since": common.parse_since(args.since), "rule_id": args.rule, "limit": args.limit}
    try:
        # Straight to the database: without SQLAlchemy's import the command
        # answers in a fraction of the time (issue 7).
        hits = direct.list_direct(settings.storage_url, timeout=settings.storage_timeout,
                                    desks=(d.name for d in settings.desks), **query)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    if hits is None:  # a new database, a migration or a new desk: the Store does those
        store = common.store(settings)
        try:
            hits = store.list_hits(**query)
        except MonitorError as e:
            raise common.fail(str(e)) from e
        finally:
            store.close()
    if args.format == "jsonl":
        from monitor.status import hit_object

        for h in hits:
            print(json.dumps(hit_object(h), ensure_ascii=False))
        return 0
    if args.rule and not hits:
        _known_rule_or_fail(settings, args.rule)
    # Minutes are enough in a table (jsonl has the seconds); the link, kept whole
    # to stay clickable, goes on a line of its own under its hit. When the match
    # time is shown only on wide terminals, the title keeps room on narrow ones.
    wide = common.output_width() >= WIDE
    rows = [("PUBLISHED", *(("MATCHED",) if wide else ()), "RULE", "SCORE", "FEED", "TITLE")]
    rows += [(_minute(h.published), *((_minute(h.matched_at),) if wide else ()), h.rule_id,
              f"{h.score:.0f}", common.safe(h.feed_name), common.safe(h.title)) for h in hits]
    n = len(rows[0])
    common.table(rows, shrink={n - 2: "end", n - 1: "end"},
                 after=[common.safe(h.link) if h.link else None for h in hits])
    return 0


def _minute(when: datetime | None) -> str:
    """``2026-01-05 09:30Z``: a table's time, to the minute, in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if when else "-"


def _known_rule_or_fail(settings: Settings, rule_id: str) -> None:
    """No hits for ``--rule``: exit 1 if no rule has that id (a typo is no empty answer)."""
    import difflib

    ids = common.rules(settings).ids
    if rule_id in ids:
        return
    close = difflib.get_close_matches(rule_id, ids, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise common.fail(f"unknown rule {rule_id!r} ({hint}rules: {', '.join(ids)})")


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("hits", help="list stored hits, newest first",
                       description="List the stored hits, newest first: when the item was "
                                   "published and matched, the rule, the score, the feed, "
                                   "the title and the link.")
    p.add_argument("--since", metavar="WHEN", help="a duration back from now (2d) or an ISO date")
    p.add_argument("--rule", metavar="ID", help="only this rule's hits")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N hits")
    p.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="a table for people (default) or one JSON object per line")
    p.set_defaults(func=cmd_hits)
