"""What every command of :mod:`monitor.cli` shares: building the settings, rules,
matcher and store from the arguments, failing with a message, and safe output.

Each builder imports its module when called, so that a command loads only what
it uses (``check`` and ``match`` never import the HTTP client or the database).
A failure is printed here and leaves the command through :class:`Exit`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from monitor.errors import ConfigError, MonitorError, Problem, RuleFileError

if TYPE_CHECKING:
    from monitor.match import Matcher
    from monitor.rules import RuleSet
    from monitor.settings import Settings
    from monitor.store import Store

    # What a command module's ``register`` adds its commands to.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class Exit(Exception):
    """Leave the command with this status (the message is already printed)."""

    def __init__(self, status: int) -> None:
        self.status = status


def fail(problems: Sequence[Problem] | str) -> Exit:
    """Print the problems (or one message) on stderr; the :class:`Exit` to raise."""
    if isinstance(problems, str):
        print(f"news-monitor: {problems}", file=sys.stderr)
    else:
        for p in problems:
            print(p, file=sys.stderr)
    return Exit(1)


def say_os_error(e: OSError) -> None:
    """One line on stderr for an error of the system, if stderr can still take it."""
    with contextlib.suppress(OSError):
        where = f"{e.filename}: " if e.filename else ""
        print(f"news-monitor: {where}{e.strerror}", file=sys.stderr, flush=True)


# -- building the parts -------------------------------------------------------


def settings(args: argparse.Namespace) -> Settings:
    """The configuration named by ``--config`` (or found), or exit 1 with its problems."""
    from monitor.config import load_settings

    try:
        return load_settings(args.config)
    except ConfigError as e:
        raise fail(e.problems) from e


def rules(settings: Settings) -> RuleSet:
    """The configured rules, or exit 1 with every problem with them."""
    loaded = rules_or_problems(settings)
    if isinstance(loaded, list):
        raise fail(loaded)
    return loaded


def rules_or_problems(settings: Settings) -> RuleSet | list[Problem]:
    """The configured rules, or every problem with them."""
    from monitor.rules import load_rules

    try:
        loaded = load_rules(settings.rules_dir)
    except RuleFileError as e:
        return list(e.problems)
    problems: list[Problem] = []
    from monitor.settings import validate_desk_rules

    validate_desk_rules(settings, set(loaded.ids), problems.append)
    return problems or loaded


def matcher(rules: RuleSet) -> Matcher:
    from monitor.match import Matcher

    return Matcher(rules)


def store(settings: Settings) -> Store:
    """The configured store, open, with the configured desks registered; or exit 1."""
    from monitor.store import Store

    try:
        opened = Store.open(settings.storage_url, timeout=settings.storage_timeout)
        # SPEC: a desk starts with the hits matched after any command first loaded it.
        opened.register_desks(d.name for d in settings.desks)
    except MonitorError as e:
        raise fail(str(e)) from e
    return opened


def setup_logging(args: argparse.Namespace, settings: Settings | None = None) -> None:
    from monitor import log as logsetup

    level = args.log_level or (settings.log_level if settings else "warning")
    logsetup.setup(level, settings.log_format if settings else "text")


def parse_since(text: str | None) -> datetime | None:
    """``2d`` (back from now) or an ISO date/time (UTC unless it says otherwise)."""
    if not text:
        return None
    from monitor.timespec import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--since {text!r} is neither a duration such as 2d nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- input ----------------------------------------------------------------------


def open_input(path: str | None) -> tuple[TextIO, str]:
    """The file to read (stdin for none or ``-``) and its name for messages."""
    if path in (None, "-"):
        return sys.stdin, "<stdin>"
    try:
        return open(path, encoding="utf-8"), str(path)  # closed by the caller
    except OSError as e:
        raise fail(f"{path}: {e.strerror}") from e


def read_jsonl(stream: TextIO, source: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines stream; a bad line exits 1, naming it."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise fail(f"{source}:{number}: not JSON: {e.msg}") from e
        if not isinstance(rec, dict):
            raise fail(f"{source}:{number}: expected a JSON object")
        yield rec


# -- output ---------------------------------------------------------------------


def safe(text: object) -> str:
    """Feed text on a terminal: no control characters, no ANSI escapes."""
    from monitor.text import strip_control

    return strip_control(str(text))


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows in columns as wide as their widest cell (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
