"""Logging set-up for the daemon and the CLI: one line per event on stderr.

Under journald (``$JOURNAL_STREAM`` names our stderr) each line starts with a
syslog priority prefix (``<4>``) and carries no timestamp, since the journal
adds its own; on a terminal or in a file the line has a UTC timestamp.

``[log] format = "json"`` makes each line one JSON object instead, for log
shippers: ``time`` (ISO 8601, UTC, ``Z``, to the millisecond), ``level``,
``logger``, ``message``, ``exception`` when there is one, and whatever fields
the call passed with ``extra=`` (feed, desk, channel, delivery...). Under
journald the priority prefix stays in front (the journal strips it, so the
message it keeps is the JSON).

:class:`Repeats` keeps a job that fails at every run from flooding the log:
the first failure is one ERROR with its cause, the repeats are DEBUG, and the
end of the outage is one INFO line naming how many runs failed and for how
long (``poll: recovered after 37 failed runs in 1m52s``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from monitor.timespec import format_duration

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        text = super().format(record)
        # One event, one line: the journal would split a multi-line message.
        return prefix + text.replace("\n", " | ")


# What every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        when = time.gmtime(record.created)
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", when) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                doc.setdefault(key, _json_value(value))  # never over the four above
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _JournalJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>" + super().format(record)


def _json_value(value: object) -> object:
    """A field as JSON has it: numbers, strings, booleans and None as they are,
    containers as they are if they are JSON, anything else as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`setup` installs, so that a second call replaces it."""


def _under_journald() -> bool:
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once (idempotent: a reload may call it again).

    ``fmt`` is ``[log] format``: ``text`` or ``json``.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JournalJsonFormatter() if _under_journald() else JsonFormatter())
    elif _under_journald():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                 "%Y-%m-%dT%H:%M:%SZ")
        text.converter = time.gmtime
        handler.setFormatter(text)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Libraries' chatter stays below our warnings.
    for noisy in ("apscheduler", "aiohttp", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    # "Skipped: maximum number of running instances reached" is by design (no
    # two runs of a job overlap), not news worth a line per tick.
    logging.getLogger("apscheduler.scheduler").setLevel(max(root.level, logging.ERROR))


@dataclass(frozen=True, slots=True)
class Outage:
    """A job failing run after run, since its first failure."""

    key: str  # the job's name ("poll", "digest:desk")
    since: float  # Unix time of the first failed run
    started: float  # the same moment on the monotonic clock
    runs: int  # failed runs so far
    kind: str  # the class name of the last error ("StorageError")
    error: str  # the last error's text


class Repeats:
    """Log each job's repeated failure once when it starts and once when it ends.

    :meth:`failed` after every failed run, :meth:`ok` after every good one. A new
    kind of error (another exception class) in the same outage is an ERROR
    again; the same one repeated is DEBUG. Thread-safe: the scheduler's jobs and
    the senders' workers (several passes under one key at once) share it.
    """

    def __init__(self, logger: logging.Logger, *,
                 clock: Any = time.monotonic, wall: Any = time.time) -> None:
        self.log = logger
        self.clock = clock
        self.wall = wall
        self._outages: dict[str, Outage] = {}
        self._lock = threading.Lock()

    def failed(self, key: str, error: BaseException) -> Outage:
        """Count a failed run of ``key``; log it when the outage (or its kind) is new."""
        with self._lock:
            return self._failed(key, error)

    def _failed(self, key: str, error: BaseException) -> Outage:
        kind, text = type(error).__name__, str(error)
        before = self._outages.get(key)
        if before is None:
            self.log.error("%s: %s", key, text)
            now = Outage(key, self.wall(), self.clock(), 1, kind, text)
        else:
            if kind != before.kind:
                self.log.error("%s: still failing (%d runs), now: %s", key, before.runs + 1,
                               text)
            else:
                self.log.debug("%s: failed again (%d runs): %s", key, before.runs + 1, text)
            now = Outage(key, before.since, before.started, before.runs + 1, kind, text)
        self._outages[key] = now
        return now

    def ok(self, key: str) -> Outage | None:
        """A good run of ``key``: the outage it ends (logged), or None."""
        with self._lock:
            gone = self._outages.pop(key, None)
        if gone is not None:
            runs = f"{gone.runs} failed run" + ("s" if gone.runs != 1 else "")
            self.log.info("%s: recovered after %s in %s (last error: %s)", key, runs,
                          format_duration(self.clock() - gone.started), gone.error)
        return gone

    def active(self) -> list[Outage]:
        """The outages under way, oldest first."""
        with self._lock:
            return sorted(self._outages.values(), key=lambda o: o.started)
