"""The ``run`` command: the daemon (:class:`monitor.daemon.Daemon`).

    news-monitor run
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.cli import common


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import Daemon

    return Daemon(args.config, tick=args.tick).run()


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("run", help="the daemon: poll, match, store, send digests and alerts")
    p.add_argument("--tick", type=float, default=None, metavar="SECONDS",
                   help=argparse.SUPPRESS)  # how often due feeds are looked for (tests)
    p.set_defaults(func=cmd_run)
