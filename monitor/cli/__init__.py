"""The ``news-monitor`` command line: parse arguments, build objects, call them.

Wiring only: each command loads what it needs (lazily, so ``check`` or
``match`` never import the HTTP client or the database) and hands it to the
module that does the work. One module per command group registers its
commands (``register``) and holds them; :mod:`monitor.cli.common` has what
they share. Exit status: 0 done, 1 invalid configuration or rules, store
unreachable, or a failed delivery; 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from monitor import __version__
from monitor.cli import (
    check,
    common,
    deliver,
    fastexit,
    feeds,
    hits,
    init,
    poll,
    rules,
    run,
    serve,
    status,
)
from monitor.errors import MonitorError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="news-monitor",
        description="Poll news feeds, match watch rules, send digests and alerts.")
    parser.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $NEWS_MONITOR_CONFIG, then "
                             "./monitor.toml, then the embedded default)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="override the configured log level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order of --help: day one first.
    for group in (init, run, poll, check, hits, status, feeds, rules, deliver, serve):
        group.register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a ``description`` its one-line ``help``, so that
    ``news-monitor COMMAND --help`` says what COMMAND does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                if sub.description is None and choice.help:
                    sub.description = choice.help[0].upper() + choice.help[1:] + "."
                _describe(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except common.Exit as e:
        return e.status
    except MonitorError as e:
        print(f"news-monitor: {common.safe(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # the system's refusal (a full disk under the output): said, not a trace
        if e.errno is None:
            raise
        common.say_os_error(e)
        return 1


def entry() -> NoReturn:
    """The ``news-monitor`` command: :func:`main`, then an exit that skips the
    interpreter's teardown (:mod:`monitor.cli.fastexit`). When ``main`` raises
    (``--help``, a bad argument), Python exits the usual way."""
    fastexit.finish(main())
