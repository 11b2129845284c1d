"""Waiting for a condition with a deadline, the way the tests of processes and
servers wait: never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0, *,
               detail: Callable[[], str] | None = None) -> None:
    """Return as soon as ``check()`` is true; after ``timeout`` seconds fail,
    naming ``what`` was awaited (and ``detail()``, such as a process's log).

    ``check`` is asked again after 5 ms, then less often, at most every 0.1 s:
    quick for what comes at once, light on a store or a log read each time."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while not check():
        if time.monotonic() > deadline:
            more = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{more}")
        time.sleep(pause)
        pause = min(2 * pause, 0.1)
