"""The environment of a ``news-monitor`` process a test starts, the one the
tests that run it as users do share."""

from __future__ import annotations

import os


def cli_env(*drop: str) -> dict[str, str]:
    """This process's environment without NEWS_MONITOR_CONFIG (a test names its
    own configuration) and without the other variables in ``drop``."""
    gone = {"NEWS_MONITOR_CONFIG", *drop}
    return {k: v for k, v in os.environ.items() if k not in gone}
