"""The real daemon as a subprocess (``news-monitor run --tick 0.5``), for the tests
that start one: its log, its hits, waiting on it while it runs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waiting import wait_until


class Daemon:
    def __init__(self, config: Path, env: dict[str, str], *, log: str = "daemon.log") -> None:
        self.config = config
        self.env = env
        self.log = config.parent / log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run", "--tick", "0.5"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"), env=env, cwd=config.parent)

    def stderr(self) -> str:
        return self.log.read_text()

    def hits(self) -> list[dict[str, object]]:
        result = subprocess.run([sys.executable, "-m", "monitor", "--config", str(self.config),
                                 "hits", "--format", "jsonl"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def status(self) -> dict[str, Any]:
        """What ``news-monitor status --format json`` prints (with this daemon's environment)."""
        result = subprocess.run([sys.executable, "-m", "monitor", "--config", str(self.config),
                                 "status", "--format", "json"], capture_output=True, text=True,
                                timeout=60, env=self.env)
        assert result.returncode == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def stored_hits(self) -> int:
        """How many hits the store holds (read directly: cheaper than ``hits`` to wait on)."""
        db = self.config.parent / "state" / "monitor.db"
        if not db.exists():
            return 0
        with contextlib.closing(sqlite3.connect(db)) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM hits").fetchone()[0])
            except sqlite3.OperationalError:  # no schema yet
                return 0

    def wait_for(self, what: str, check: Callable[[], object], timeout: float = 20.0) -> None:
        def running_and_check() -> object:
            assert self.proc.poll() is None, f"daemon exited:\n{self.stderr()}"
            return check()

        wait_until(running_and_check, what, timeout, detail=self.stderr)
