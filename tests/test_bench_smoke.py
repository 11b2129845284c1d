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
    ("bench_web.py", "| web store | size | request |"),
    ("bench_score.py", "| score | set | hits |"),
    ("bench_language.py", "| set | read | items | right |"),
])
def test_bench_script_runs_small(script: str, heading: str) -> None:
    env = cli_env()
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], cwd=BENCH.parent,
                            env={**env, "PYTHONPATH": str(BENCH.parent)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert heading in result.stdout
    assert "reader: skipped" in result.stdout or script != "bench_poll.py"


def test_the_full_text_bench_runs_small(tmp_path: Path) -> None:
    """bench_full_text --smoke: the article pages read, the rules see more with them;
    an absent set: exit 2."""
    import json

    env = {**cli_env(), "PYTHONPATH": str(BENCH.parent)}
    out = tmp_path / "full_text.json"
    result = subprocess.run([sys.executable, str(BENCH / "bench_full_text.py"), "--smoke",
                             "--json", str(out)], cwd=BENCH.parent, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "| full_text | macro-F1 |" in result.stdout
    got = json.loads(out.read_text())
    on, off = got["quality"]["on"], got["quality"]["off"]
    assert on["with_content"] == got["articles"] and off["with_content"] == 0
    assert on["macro_f1"] > off["macro_f1"]
    assert got["cost"]["pages"] == got["cost"]["on"]["items"]  # each page once
    assert got["cost"]["off"]["pages"] == 0
    absent = subprocess.run([sys.executable, str(BENCH / "bench_full_text.py"),
                             str(tmp_path / "no")], cwd=BENCH.parent, env=env,
                            capture_output=True, text=True, timeout=60)
    assert absent.returncode == 2 and "no such file" in absent.stderr


def test_the_source_benches_run_on_a_tiny_set(tmp_path: Path) -> None:
    """bench_telegram and bench_content_depth on two items each; absent sets: exit 2."""
    import json

    env = {**cli_env(), "PYTHONPATH": str(BENCH.parent)}
    posts = tmp_path / "telegram.jsonl"
    posts.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in [
        {"channel": "chan_a", "post": 10, "datetime": "2022-03-23T08:12:00Z",
         "text": "⚡️ КТК остановил отгрузки после шторма", "lang": "ru",
         "labels": ["cpc-disruption"]},
        {"channel": "chan_a", "post": 11, "datetime": "2022-03-23T09:00:00Z",
         "text": "Погода в Алматы", "lang": "ru", "labels": []}]), encoding="utf-8")
    articles = tmp_path / "articles.jsonl"
    articles.write_text(json.dumps({
        "id": "x", "title": "Storm halts loadings", "lede": "",
        "body": "The Caspian Pipeline Consortium halted loadings after a storm.\n\nMore.",
        "labels": ["cpc-disruption"]}) + "\n", encoding="utf-8")
    runs = {script: subprocess.run([sys.executable, str(BENCH / script), str(corpus)],
                                   cwd=BENCH.parent, env=env, capture_output=True, text=True,
                                   timeout=120)
            for script, corpus in [("bench_telegram.py", posts),
                                   ("bench_content_depth.py", articles)]}
    telegram = runs["bench_telegram.py"]
    assert telegram.returncode == 0, telegram.stderr[-3000:]
    got = json.loads(telegram.stdout)
    assert (got["items"], got["repeat_poll_new_items"], got["new_post_new_items"]) == (2, 0, 1)
    assert got["precision"] == got["recall"] == 1.0
    depth = runs["bench_content_depth.py"]
    assert depth.returncode == 0, depth.stderr[-3000:]
    assert "headline + 2 paragraphs      macro-F1 1.000" in depth.stdout
    for script in ("bench_telegram.py", "bench_content_depth.py"):
        absent = subprocess.run([sys.executable, str(BENCH / script), str(tmp_path / "no")],
                                cwd=BENCH.parent, env=env, capture_output=True, text=True,
                                timeout=60)
        assert absent.returncode == 2 and "no such file" in absent.stderr
