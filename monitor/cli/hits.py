"""The ``hits`` command: the stored hits, as a table or JSON Lines.

    news-monitor hits [--since WHEN] [--rule ID] [--limit N] [--format jsonl]
"""

from __future__ import annotations

import argparse
import json

from monitor.cli import common
from monitor.errors import MonitorError
from monitor.models import isoformat_z


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
        for h in hits:
            print(json.dumps({
                "rule": h.rule_id, "score": h.score, "severity": str(h.severity),
                "guid": h.guid, "title": h.title, "link": h.link, "feed": h.feed_url,
                "feed_name": h.feed_name, "outlet": h.shown_outlet,
                "published": isoformat_z(h.published),
                "matched_at": isoformat_z(h.matched_at), "rule_version": h.rule_version,
                "evidence": [e.to_dict() for e in h.evidence],
            }, ensure_ascii=False))
        return 0
    rows = [("MATCHED", "RULE", "SCORE", "FEED", "TITLE")]
    rows += [(isoformat_z(h.matched_at) or "", h.rule_id, f"{h.score:.0f}",
              common.safe(h.feed_name)[:24], common.safe(h.title)[:70]) for h in hits]
    common.table(rows)
    return 0


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("hits", help="list stored hits")
    p.add_argument("--since", metavar="WHEN", help="a duration back from now (2d) or an ISO date")
    p.add_argument("--rule", metavar="ID")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--format", choices=("table", "jsonl"), default="table")
    p.set_defaults(func=cmd_hits)
