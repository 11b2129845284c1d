"""The web view's commands: serve it alone, and manage its users.

    news-monitor serve [--listen HOST:PORT]
    news-monitor web passwd USER [--file PATH]
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.settings import Settings

DEFAULT_LISTEN = "127.0.0.1:8080"
#: Exit status when the address is refused (no authentication off loopback).
REFUSED = 2


def users_or_fail(settings: Settings) -> dict[str, str] | None:
    """The users of ``[web] passwords`` (None when not set), or exit 1."""
    from monitor.web.auth import read_passwords

    if settings.web_passwords is None:
        return None
    try:
        users = read_passwords(settings.web_passwords)
    except OSError as e:
        raise common.fail(f"[web] passwords: cannot read {settings.web_passwords}: "
                          f"{e.strerror}") from e
    except ValueError as e:
        raise common.fail(f"[web] passwords: {e}") from e
    if not users:
        raise common.fail(f"[web] passwords: {settings.web_passwords} has no user: add one "
                          "with `news-monitor web passwd USER`")
    return users


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.settings import address_problem
    from monitor.web import split_listen
    from monitor.web.auth import listen_problem

    settings = common.settings(args)
    listen = args.listen or settings.web_listen or DEFAULT_LISTEN
    bad = address_problem(listen)
    if bad:
        print(f"news-monitor: --listen {bad}", file=sys.stderr)
        return REFUSED
    host, port = split_listen(listen)
    users = users_or_fail(settings)
    refused = listen_problem(host, port, users is not None)
    if refused:
        print(f"news-monitor: {refused}", file=sys.stderr)
        return REFUSED
    rules = common.rules(settings)
    common.setup_logging(args, settings)
    store = common.store(settings)
    try:
        from monitor.web import WebServer
        from monitor.web.app import View

        view = View(settings, rules, store)
        server = WebServer(lambda: view, host, port, users=users)
        print(f"news-monitor: serving the web view on http://{listen}/"
              + (" (HTTP basic authentication)" if users else ""), file=sys.stderr, flush=True)
        server.serve_forever()
    except OSError as e:
        raise common.fail(str(e)) from e
    except MonitorError as e:
        raise common.fail(str(e)) from e
    finally:
        store.close()
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    from monitor.web.auth import set_password

    path = Path(args.file) if args.file else None
    if path is None:
        settings = common.settings(args)
        if settings.web_passwords is None:
            raise common.fail("no password file: set [web] passwords = \"web-users\" in the "
                              "configuration, or give --file PATH")
        path = settings.web_passwords
    password = os.environ.get("NEWS_MONITOR_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.user}: ")
            if getpass.getpass("again: ") != password:
                raise common.fail("the passwords differ; nothing changed")
    if len(password) < 8:
        raise common.fail("a password has at least 8 characters; nothing changed")
    try:
        new = set_password(path, args.user, password)
    except ValueError as e:
        raise common.fail(str(e)) from e
    except OSError as e:
        raise common.fail(f"{path}: {e.strerror}") from e
    print(f"{'added' if new else 'changed the password of'} {args.user} in {path}")
    return 0


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("serve", help="serve the web view (hits, search, feeds, rules, "
                                     "silences, deliveries)",
                       description="Serve the web view and its JSON API. Without [web] "
                                   "passwords it listens on loopback only.")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help=f"where to listen (default: [web] listen, else {DEFAULT_LISTEN})")
    p.set_defaults(func=cmd_serve)
    w = sub.add_parser("web", help="the web view's users")
    ws = w.add_subparsers(dest="web_command", required=True, metavar="ACTION")
    pw = ws.add_parser("passwd", help="add a user of the web view, or change their password",
                       description="Add a user to the password file of [web] passwords (or "
                                   "--file), or change their password: asked twice on a "
                                   "terminal, else read from stdin or $NEWS_MONITOR_PASSWORD. "
                                   "Stored as a scrypt hash.")
    pw.add_argument("user", help="the user name (no colon, no space)")
    pw.add_argument("--file", metavar="PATH", help="the password file (default: [web] passwords)")
    pw.set_defaults(func=cmd_passwd)
