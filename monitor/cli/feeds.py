"""The ``feeds`` commands: list the configured feeds, export them as OPML, or
append feeds to the configuration file (:mod:`monitor.config_edit`).

    news-monitor feeds list
    news-monitor feeds add URL [--name NAME] [--interval 5m]
    news-monitor feeds import FILE.opml
    news-monitor feeds export
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.cli import common


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
        added = config_edit.add_feeds(path, settings, [(args.url, args.name, args.interval)])
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


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("feeds", help="list, add, import or export feeds")
    fs = p.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fs.add_parser("list", help="the configured feeds")
    a = fs.add_parser("add", help="append a [[feeds]] entry to the config file")
    a.add_argument("url", help="the feed's http(s) URL or a local file")
    a.add_argument("--name", help="shown instead of the feed's title")
    a.add_argument("--interval", help="e.g. 5m")
    i = fs.add_parser("import", help="append the feeds of an OPML file")
    i.add_argument("opml", help="the OPML file to import")
    fs.add_parser("export", help="print the feeds as OPML")
    p.set_defaults(func=cmd_feeds)
