"""Logging set-up for the daemon and the CLI: one line per event on stderr.

Under journald (``$JOURNAL_STREAM`` names our stderr) each line starts with a
syslog priority prefix (``<4>``) and carries no timestamp, since the journal
adds its own; on a terminal or in a file the line has a UTC timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        text = super().format(record)
        # One event, one line: the journal would split a multi-line message.
        return prefix + text.replace("\n", " | ")


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


def setup(level: str = "info") -> None:
    """Configure the root logger once (idempotent: a reload may call it again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    if _under_journald():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                "%Y-%m-%dT%H:%M:%SZ")
        fmt.converter = time.gmtime
        handler.setFormatter(fmt)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Libraries' chatter stays below our warnings.
    for noisy in ("apscheduler", "aiohttp", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    # "Skipped: maximum number of running instances reached" is by design (no
    # two runs of a job overlap), not news worth a line per tick.
    logging.getLogger("apscheduler.scheduler").setLevel(max(root.level, logging.ERROR))
