"""The ``feeds`` commands: list the configured feeds, export them as OPML, or
append feeds to the configuration file (:mod:`monitor.config_edit`).

    news-monitor feeds list
    news-monitor feeds add URL [--name NAME] [--interval 5m] [--all]
    news-monitor feeds import FILE.opml
    news-monitor feeds export
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli import common

if TYPE_CHECKING:
    from monitor.settings import Settings


def cmd_feeds(args: argparse.Namespace) -> int:
    from monitor import opml

    settings = common.settings(args)
    if args.feeds_command == "list":
        rows = [("NAME", "INTERVAL", "URL")]
        from monitor.timespec import format_duration

        for f in settings.feeds:
            rows.append((common.safe(f.name or "-"), format_duration(settings.feed_interval(f)),
                         common.safe(f.url)))
        common.table(rows)
        return 0
    if args.feeds_command == "export":
        sys.stdout.write(opml.export_opml([(f.url, f.name) for f in settings.feeds]))
        return 0
    from monitor import config_edit

    path = config_edit.target_path(args.config, settings)
    if args.feeds_command == "add":
        urls = _discover(args.url, settings, every=args.all)
        added = config_edit.add_feeds(path, settings,
                                      [(u, args.name, args.interval) for u in urls])
    else:
        try:
            data = Path(args.opml).read_bytes()
        except OSError as e:
            raise common.fail(f"{args.opml}: {e.strerror}") from e
        try:
            entries = opml.import_opml(data)
        except ValueError as e:
            raise common.fail(f"{args.opml}: {e}") from e
        added = config_edit.add_feeds(path, settings, [(u, n, None) for u, n in entries])
    print(f"{path}: added {added} feed{'s' if added != 1 else ''}")
    return 0


def _is_page(url: str) -> bool:
    """A site's page (``https://outlet.example.org/``), not a feed's own URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.scheme.lower() in ("http", "https") and (parts.hostname or "") != "t.me"
            and not parts.query and (parts.path in ("", "/") or parts.path.endswith("/")))


def _discover(url: str, settings: Settings, *, every: bool) -> list[str]:
    """The feed URLs to add for ``url``: itself, unless it is a page that is no
    feed and announces feeds (``<link rel="alternate">``): then the first of
    them, or all with ``every``. Says what it found."""
    if not _is_page(url):
        return [url]
    from dataclasses import replace

    from monitor.fetch import fetch_all
    from monitor.models import FetchRequest
    from monitor.parse import parse_feed
    from monitor.parse.discover import feed_links

    (got,) = fetch_all([FetchRequest(url)], replace(settings.poll, timeout=10.0))
    if not got.ok:
        raise common.fail(f"{url}: cannot read it to find its feeds: {got.error}")
    if parse_feed(got.body, url=url, headers=got.headers).is_feed:
        return [url]
    found = feed_links(got.body, got.final_url or url)
    if not found:
        raise common.fail(f"{url}: neither a feed nor a page that links to one "
                          '(no <link rel="alternate"> of an RSS, Atom or JSON Feed type)')
    chosen = [u for u, _ in found] if every else [found[0][0]]
    print(f"{common.safe(url)}: found {len(found)} feed{'s' if len(found) != 1 else ''}:")
    for u, title in found:
        mark = "+" if u in chosen else " "
        print(f"  {mark} {common.safe(u)}" + (f"  ({common.safe(title)})" if title else ""))
    return chosen


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("feeds", help="list, add, import or export feeds")
    fs = p.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fs.add_parser("list", help="the configured feeds")
    a = fs.add_parser("add", help="append a [[feeds]] entry to the config file")
    a.add_argument("url", help="the feed's http(s) URL or a local file; a site's page "
                   "(https://outlet.example.org/) adds the feed it announces")
    a.add_argument("--name", help="shown instead of the feed's title")
    a.add_argument("--interval", help="e.g. 5m")
    a.add_argument("--all", action="store_true",
                   help="a site's page announcing several feeds: add them all, not the first")
    i = fs.add_parser("import", help="append the feeds of an OPML file")
    i.add_argument("opml", help="the OPML file to import")
    fs.add_parser("export", help="print the feeds as OPML")
    p.set_defaults(func=cmd_feeds)
