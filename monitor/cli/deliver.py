"""The ``digest``, ``silence`` and ``deliveries`` commands: build the settings,
rules and store, hand them to :class:`monitor.deliver.Deliverer` or the store,
print the outcome.

    news-monitor digest [--desk NAME] [--preview [--html FILE]]
    news-monitor silence add RULE [--desk NAME] --for 2d --reason TEXT
    news-monitor silence list [--all]
    news-monitor silence remove ID
    news-monitor deliveries list [--state STATE] [--desk NAME] [--limit N] [--format json]
    news-monitor deliveries retry (ID ... | --failed) [--desk NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import MonitorError
from monitor.models import isoformat_z

if TYPE_CHECKING:
    from monitor.deliver import Deliverer, DeliveryReport
    from monitor.settings import Settings


def _owner() -> str:
    """Who claims the deliveries this command sends (its leases name it)."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:cli"


def _desk_or_fail(settings: Settings, name: str | None) -> None:
    if name is not None and settings.desk(name) is None:
        known = ", ".join(d.name for d in settings.desks) or "none configured"
        raise common.fail(f"no desk {name!r} (desks: {known})")


def cmd_digest(args: argparse.Namespace) -> int:
    from monitor.deliver import Deliverer

    settings = common.settings(args)
    common.setup_logging(args, settings)
    rules = common.rules(settings)
    _desk_or_fail(settings, args.desk)
    if args.html and not args.preview:
        raise common.fail("--html goes with --preview")
    if not settings.desks:
        print("no desks configured: add a [[desks]] table to the configuration")
        return 0
    store = common.store(settings)
    try:
        deliverer = Deliverer(settings, store, rules, owner=_owner())
        if args.preview:
            return _preview(deliverer, settings, args)
        # What an earlier attempt left pending goes first, back-off or not (SPEC: now,
        # whatever the schedule), then the new digest.
        report = deliverer.retry_due(args.desk, force=True).add(
            deliverer.send_digests(args.desk))
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    return 0 if _print_report(report) else 1


def _print_report(report: DeliveryReport) -> bool:
    """Each failure on stderr, the summary line on stdout; whether all went out."""
    for error in report.errors:
        print(f"FAIL {common.safe(error)}", file=sys.stderr)
    print(report.summary())
    return report.ok


def _preview(deliverer: Deliverer, settings: Settings, args: argparse.Namespace) -> int:
    """Each desk's digest as the templates render it (text, or HTML with ``--html``)."""
    from monitor.channels.templates import Renderer

    renderer = Renderer(settings.templates_dir)
    desks = [d.name for d in settings.desks if args.desk in (None, d.name)]
    for n, name in enumerate(desks):
        digest = deliverer.preview(name)
        if n:
            print()
        print(f"Subject: {common.safe(digest.subject)}\n")
        # The text part is already free of control characters; safe() is a second lock.
        print("\n".join(common.safe(line) for line in renderer.text(digest).splitlines()))
        if args.html:
            path = Path(args.html)
            if len(desks) > 1:  # one file per desk: digest.html -> digest-energy.html
                path = path.with_name(f"{path.stem}-{name}{path.suffix or '.html'}")
            try:
                path.write_text(renderer.html(digest), encoding="utf-8")
            except OSError as e:
                raise common.fail(f"{path}: {e.strerror}") from e
            print(f"(HTML written to {path})", file=sys.stderr)
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    from monitor.timespec import parse_duration

    settings = common.settings(args)
    now = datetime.now(UTC)
    if args.silence_command == "add":
        rules = common.rules(settings)
        if rules.get(args.rule) is None:
            raise common.fail(f"no rule {args.rule!r} (rules: {', '.join(rules.ids)})")
        _desk_or_fail(settings, args.desk)
        try:
            seconds = parse_duration(args.duration)
        except ValueError:
            raise common.fail(f"--for {args.duration!r} is not a duration such as 2d") from None
        if not args.reason.strip():
            raise common.fail("--reason must say why (it is shown by `silence list`)")
    store = common.store(settings)
    try:
        if args.silence_command == "add":
            until = now + timedelta(seconds=seconds)
            sid = store.add_silence(args.rule, args.desk, until, args.reason.strip(), now=now)
            print(f"silence {sid}: {args.rule} for {args.desk or 'every desk'} until "
                  f"{isoformat_z(until)}")
            return 0
        if args.silence_command == "remove":
            if not store.remove_silence(args.id, now=now):
                raise common.fail(f"no active silence {args.id} (see `news-monitor silence list`)")
            print(f"silence {args.id} ended")
            return 0
        silences = store.list_silences(active_at=None if args.all else now)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    if not silences:
        print("no active silences" if not args.all else "no silences")
        return 0
    rows = [("ID", "RULE", "DESK", "UNTIL", "REASON")]
    rows += [(str(s.id), s.rule_id, s.desk or "*",
              (isoformat_z(s.until) or "") + ("" if s.until > now else " (ended)"),
              common.safe(s.reason)) for s in silences]
    common.table(rows, shrink={4: "end"})
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    _desk_or_fail(settings, args.desk)
    if args.deliveries_command == "retry":
        return _retry(args, settings)
    store = common.store(settings)
    try:
        found = store.list_deliveries(states=[args.state] if args.state else None,
                                      desk=args.desk, limit=args.limit)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    if args.format == "json":
        from monitor.status import delivery_row

        print(json.dumps([delivery_row(d) for d in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no deliveries")
        return 0
    # The last error, whole, on a line of its own: its cause (an SMTP code, a
    # Slack reason) is what the operator reads it for, and is at its end.
    rows = [("ID", "DESK", "CHANNEL", "KIND", "STATE", "ATTEMPTS", "CREATED")]
    rows += [(str(d.id), common.safe(d.desk), d.channel, d.kind, d.state, str(d.attempts),
              isoformat_z(d.created_at) or "") for d in found]
    common.table(rows, after=[f"last error: {common.safe(d.last_error)}" if d.last_error
                              else None for d in found])
    return 0


def _retry(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.deliver import Deliverer

    if bool(args.ids) == args.failed:
        raise common.fail("give the ids of failed deliveries, or --failed for all of them "
                        "(see `news-monitor deliveries list --state failed`)")
    common.setup_logging(args, settings)
    rules = common.rules(settings)
    store = common.store(settings)
    status = 0
    try:
        requeued = store.requeue_failed(args.ids or None, desk=args.desk)
        if args.ids:  # say why the others were not
            found = {d.id: d for d in store.list_deliveries(ids=args.ids, limit=len(args.ids))}
            for i in sorted(set(args.ids) - set(requeued)):
                d = found.get(i)
                if d is None:
                    why = "no such delivery"
                elif d.state != "failed":
                    why = f"it is {d.state}"
                else:  # failed, but not on the --desk asked for
                    why = f"it is desk {d.desk}'s"
                print(f"news-monitor: delivery {i} not retried: {common.safe(why)}",
                      file=sys.stderr)
                status = 1
        if not requeued:
            print("nothing to retry")
            return status
        print(f"retrying {len(requeued)} failed "
              f"{'delivery' if len(requeued) == 1 else 'deliveries'}: "
              + ", ".join(f"#{i}" for i in requeued))
        report = Deliverer(settings, store, rules, owner=_owner()).retry_due(args.desk)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    return status if _print_report(report) else 1


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("digest", help="send each desk its digest now (or preview it)",
                       description="Send each desk (or only NAME) its digest now, whatever "
                                   "the schedule, with what earlier attempts left pending "
                                   "(back-off or not). Exit 1 when a delivery failed.")
    p.add_argument("--desk", metavar="NAME", help="only this desk")
    p.add_argument("--preview", action="store_true",
                   help="print the text digest; send and mark nothing")
    p.add_argument("--html", metavar="FILE", help="with --preview: also write the HTML here")
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("silence", help="mute a rule's hits for a while (they are still stored)")
    ss = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    a = ss.add_parser("add", help="mute RULE (on one desk, or all) for a duration")
    a.add_argument("rule", metavar="RULE", help="the rule id to mute")
    a.add_argument("--desk", metavar="NAME", help="only on this desk (default: every desk)")
    a.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                   help="how long, e.g. 2d or 12h")
    a.add_argument("--reason", required=True, help="why (a story everyone already knows)")
    lst = ss.add_parser("list", help="the active silences")
    lst.add_argument("--all", action="store_true", help="ended ones too")
    r = ss.add_parser("remove", help="end a silence now")
    r.add_argument("id", type=int, metavar="ID", help="the silence's id (see `silence list`)")
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("deliveries", help="list deliveries; retry the ones that failed for good")
    ds = p.add_subparsers(dest="deliveries_command", required=True, metavar="ACTION")
    lst = ds.add_parser("list", help="deliveries, newest first")
    lst.add_argument("--state", choices=("pending", "sent", "failed"), help="only these")
    lst.add_argument("--desk", metavar="NAME", help="only this desk")
    lst.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (20)")
    lst.add_argument("--format", choices=("table", "json"), default="table",
                     help="a table for people (default) or a JSON list")
    r = ds.add_parser("retry", help="send failed deliveries again now, once their cause "
                                    "is fixed (a recipient, a URL)")
    r.add_argument("ids", type=int, nargs="*", metavar="ID",
                   help="the failed deliveries to send again (see `deliveries list`)")
    r.add_argument("--failed", action="store_true", help="every delivery that failed for good")
    r.add_argument("--desk", metavar="NAME", help="only this desk's")
    p.set_defaults(func=cmd_deliveries)
