"""``python -m monitor`` is ``news-monitor``."""

from monitor.cli import entry

entry()
