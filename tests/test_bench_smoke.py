"""The bench scripts still run: each one with ``--smoke`` (tiny sizes, one run).

Benchmarks are not timed tests: nothing here asserts a speed, only that every
script starts its loopback server, drives the real commands, checks what
they did (each script fails on a wrong count) and prints its table. reader is
never involved (no ``--reader-python``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from procenv import cli_env

pytestmark = pytest.mark.slow  # every test here starts a process

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script, heading", [
    ("bench_poll.py", "| feeds | poll |"),
    ("bench_parse.py", "| variant | documents/s |"),
    ("bench_store.py", "| store | figure |"),
    ("bench_daemon_memory.py", "| daemon memory | MiB |"),
    ("bench_daemon_soak.py", "| daemon soak | value |"),
    ("bench_match.py", "| rule set | mix |"),
    ("bench_daemon_cpu.py", "| daemon steady state | value |"),
])
def test_bench_script_runs_small(script: str, heading: str) -> None:
    env = cli_env()
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], cwd=BENCH.parent,
                            env={**env, "PYTHONPATH": str(BENCH.parent)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert heading in result.stdout
    assert "reader: skipped" in result.stdout or script != "bench_poll.py"
