"""The ``status`` command: :func:`monitor.status.status_document`, as a table or JSON.

The daemons shown are those whose heartbeat is fresh (:mod:`monitor.status`); a
daemon running on its last good copy of the configuration and rules (the files
are broken) says so, with the problems. A broken configuration is told on stderr,
and the state read with the last good copy's, as the daemon runs on it.
``status`` writes one small row to prove the store takes writes; it exits 1
when that write fails or a running daemon says its writes fail (a full disk,
a read-only file, a lost permission), naming the error and since when.

    news-monitor status [--format json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import ConfigError, MonitorError

if TYPE_CHECKING:
    from monitor.settings import Settings


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.status import status_document

    settings = _settings(args)
    store = common.store(settings)
    try:
        doc = status_document(settings, store, probe=True)
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0 if doc["store"]["ok"] else 1
    safe = common.safe
    rows = [("FEED", "ITEMS", "LAST POLLED", "STATUS", "FAIL", "NEXT POLL", "ERROR")]
    for f in doc["feeds"]:
        rows.append((safe(f["name"])[:40], str(f["items"]), f["last_polled"] or "never",
                     str(f["last_status"] if f["last_status"] is not None else "-"),
                     str(f["failures"]), f["next_poll"] or ("disabled" if f["disabled"] else "-"),
                     safe(f["error"] or f["flag"] or "")))
    # An error's cause is at its end ("... : connection refused"): cut its middle.
    common.table(rows, shrink={6: "middle"})
    for f in doc["feeds"]:
        if f["article_failures"]:
            print(safe(f"articles: {f['name'][:40]}: {f['article_failures']} pages not read "
                       f"(matched on the feed's text); last: {f['article_error']}"))
    print(f"\n{doc['items']} items, {doc['hits']} hits, "
          f"{doc['pending_deliveries']} pending deliveries (hit x channel)")
    for d in doc["retrying"]:
        print(f"retrying: {d['desk']}/{d['channel']} {d['kind']} #{d['id']}, "
              f"{d['attempts']} attempts, next {d['next_attempt']}: {safe(d['last_error'])}")
    for d in doc["failed"]:
        print(f"FAILED:   {d['desk']}/{d['channel']} {d['kind']} #{d['id']} "
              f"(not retried until `deliveries retry {d['id']}`): {safe(d['last_error'])}")
    for daemon in doc["daemons"]:
        reload = daemon.get("last_reload") or {}
        rules = ", ".join(daemon.get("rules", {}))
        line = (f"daemon {daemon.get('host')}:{daemon.get('pid')} ({daemon.get('version')}): "
                f"up since {daemon.get('started')}, last seen {daemon.get('last_seen')}, "
                f"rules {rules}")
        copy = daemon.get("last_good_copy")
        if copy:  # started on (or reloaded into) broken files: the problems are told here
            line += (f"; config: last good copy of {copy.get('saved')} "
                     f"({'; '.join(copy.get('problems', []))})")
        if reload:
            verdict = "ok" if reload.get("ok") else "REJECTED" if copy else \
                "REJECTED: " + "; ".join(reload.get("errors", []))
            line += f"; last reload {reload.get('at')} {verdict}"
        report = daemon.get("store") or {}
        if report.get("ok") is False:
            line += f"; STORE FAILING since {report.get('since')}: {report.get('error')}"
        print(safe(line))
    health = doc["store"]
    if health["writable"] is False:
        print(safe(f"store: not writable: {health['error']}"))
    elif not health["ok"]:
        print(safe(f"store: failing for daemon {health['daemon']} since {health['since']}: "
                   f"{health['error']}"))
    return 0 if health["ok"] else 1


def _settings(args: argparse.Namespace) -> Settings:
    """The configuration; a broken one is told on stderr and, when the daemon kept a
    last good copy (which it runs on after a restart), the state is read with that."""
    from monitor import lastgood
    from monitor.config import load_settings
    from monitor.settings import config_path

    try:
        return load_settings(args.config)
    except ConfigError as e:
        path = config_path(args.config)
        try:
            copy = lastgood.find(lastgood.folder(args.config), path)
            if copy is None:
                raise common.fail(e.problems) from e
            settings = lastgood.copied_settings(copy, str(path or lastgood.DEFAULT_SOURCE))
        except (OSError, ValueError, ConfigError):
            raise common.fail(e.problems) from e
        for p in e.problems:
            print(p, file=sys.stderr)
        print(f"news-monitor: the configuration is broken: the state shown is that of the "
              f"last good copy of {copy.saved_text} ({copy.folder}), which a daemon restarted "
              "on it runs on", file=sys.stderr)
        return settings


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("status", help="the state of each feed and of the deliveries")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="a table for people (default) or one JSON document")
    p.set_defaults(func=cmd_status)
