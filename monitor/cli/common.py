"""What every command of :mod:`monitor.cli` shares: building the settings, rules,
matcher and store from the arguments, reading JSON Lines items, failing with a
message, and safe output in tables that fit the terminal.

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
from datetime import datetime
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
    from monitor.timespec import parse_since as since

    try:
        return since(text)
    except ValueError:
        raise fail(f"--since {text!r} is neither a duration such as 2d nor an ISO date") from None


# -- input ----------------------------------------------------------------------


def open_input(path: str | None) -> tuple[TextIO, str]:
    """The file to read (stdin for none or ``-``) and its name for messages."""
    if path in (None, "-"):
        return sys.stdin, "<stdin>"
    try:
        return open(path, encoding="utf-8"), str(path)  # closed by the caller
    except OSError as e:
        raise fail(f"{path}: {e.strerror}") from e


#: What every input line of ``match`` and ``rules eval`` holds (SPEC: the format of dev.jsonl).
ITEM_KEYS = ("id", "title", "summary")


def read_jsonl(stream: TextIO, source: str) -> Iterator[dict[str, Any]]:
    """The items of a JSON Lines stream: JSON objects with ``id``, ``title`` and
    ``summary`` (strings or null). A line that is not one is reported on stderr
    (``source:line: why``) and skipped; once the stream is read, :class:`Exit`
    with status 1 if any was (the good lines have been yielded)."""
    bad = 0
    number = 0
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        why = None
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            why = f"not JSON: {e.msg}"
        else:
            why = _not_an_item(rec)
        if why is not None:
            bad += 1
            print(f"{source}:{number}: {why}", file=sys.stderr)
            continue
        yield rec
    if bad:
        raise fail(f"{source}: {bad} of {number} lines skipped (expected JSON objects with "
                   f"{', '.join(ITEM_KEYS)})")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def _not_an_item(rec: object) -> str | None:
    """Why a decoded line is no item, or None."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, not {_json_kind(rec)}"
    missing = [k for k in ITEM_KEYS if k not in rec]
    if missing:
        return "missing " + ", ".join(repr(k) for k in missing)
    wrong = [k for k in ITEM_KEYS[1:] if rec[k] is not None and not isinstance(rec[k], str)]
    if wrong:
        return ", ".join(repr(k) for k in wrong) + " must be a string"
    return None


# -- output ---------------------------------------------------------------------


def safe(text: object) -> str:
    """Feed text on a terminal: no control characters, no ANSI escapes."""
    from monitor.text import strip_control

    return strip_control(str(text))


#: The width of a table when the output is no terminal: fixed, so that what a
#: pipe or a script reads does not depend on the window it ran in.
PIPE_WIDTH = 100
#: A shrinking column is never cut narrower than this (a narrow terminal wraps instead).
MIN_CUT = 12


def output_width() -> int:
    """The width tables fit: ``$COLUMNS`` when set, else the terminal's, else :data:`PIPE_WIDTH`."""
    import os
    import shutil

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not sys.stdout.isatty():
        return PIPE_WIDTH
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns


def shorten(text: str, width: int) -> str:
    """``text`` in ``width`` characters: cut at a word boundary, ending with ``…``."""
    if len(text) <= width:
        return text
    cut = text[:width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:  # a word boundary not too far back
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def shorten_middle(text: str, width: int) -> str:
    """``text`` in ``width`` characters, its middle replaced by ``…``: the start says
    where, the end says why (an error's cause is at its end)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head].rstrip() + "…" + text[len(text) - tail:].lstrip()


def table(rows: Sequence[Sequence[str]], *, shrink: dict[int, str] | None = None,
          after: Sequence[str | None] = (), width: int | None = None) -> None:
    """Print rows in columns as wide as their widest cell (the first row is the header).

    ``shrink``: the columns that give way when a row would be wider than the
    output (:func:`output_width`), index -> ``"end"`` (cut at a word, ``…``) or
    ``"middle"`` (:func:`shorten_middle`); the space left is shared between them.
    ``after[i]``: a line printed under body row ``i`` (a link, kept whole).
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if shrink:
        width = width or output_width()
        fixed = sum(w for i, w in enumerate(widths) if i not in shrink) + 2 * (len(widths) - 1)
        for i, cap in _share(max(width - fixed, 0), {i: widths[i] for i in shrink}).items():
            widths[i] = cap
        cut = {"end": shorten, "middle": shorten_middle}
        rows = [r if n == 0 else [cut[shrink[i]](c, widths[i]) if i in shrink else c
                                  for i, c in enumerate(r)] for n, r in enumerate(rows)]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        extra = after[n - 1] if 0 < n <= len(after) else None
        if extra:
            print(f"  {extra}")


def _share(room: int, wants: dict[int, int]) -> dict[int, int]:
    """Split ``room`` characters between columns wanting ``wants``: a column that wants
    less than an equal share keeps its width; the others split the rest (at least
    :data:`MIN_CUT` each)."""
    out: dict[int, int] = {}
    left = dict(wants)
    while left:
        fair = room // len(left)
        small = {i: w for i, w in left.items() if w <= fair}
        if not small:
            break
        for i, w in small.items():
            out[i] = w
            room -= w
            del left[i]
    for i in left:
        out[i] = max(room // len(left), MIN_CUT)
    return out
