"""How the ``news-monitor`` process ends: it skips the interpreter's teardown
(``monitor.cli.fastexit``), so these check, on real processes, that its output and exit
status are still whole, and that a reader going away or a full disk are said
plainly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from procenv import cli_env

from monitor.rules import shipped_rules_dir

pytestmark = pytest.mark.slow  # every test here starts a process

STORY = {"title": "CPC halts loadings at Novorossiysk after a storm damages a mooring",
         "summary": "Kazakh crude exports through the Caspian Pipeline Consortium stopped."}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "monitor.toml").write_text(
        f'[storage]\nurl = "sqlite:///monitor.db"\n[rules]\ndir = "{shipped_rules_dir()}"\n')
    return tmp_path


def items(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"s{i}", **STORY}) + "\n" for i in range(n)))
    return path


def environ() -> dict[str, str]:
    # Buffered output, as users have it: PYTHONUNBUFFERED would hide a missing flush.
    return cli_env("PYTHONUNBUFFERED")


def run(workdir: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=workdir, env=environ(),
                          text=True, timeout=60, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("n", [2, 3000])  # all in the buffer; many buffers and a remainder
def test_every_line_reaches_a_pipe(workdir: Path, n: int) -> None:
    done = run(workdir, "match", str(items(workdir / "items.jsonl", n)),
               capture_output=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"s{i}" for i in range(n)]
    assert done.stderr == ""


def test_the_exit_status_is_the_commands(workdir: Path) -> None:
    (workdir / "bad.jsonl").write_text(json.dumps({"id": "a", **STORY}) + "\nnot json\n")
    done = run(workdir, "match", "bad.jsonl", capture_output=True)
    assert done.returncode == 1
    assert json.loads(done.stdout)["id"] == "a"
    assert "bad.jsonl:2: not JSON" in done.stderr


def test_a_reader_that_goes_away_is_no_error(workdir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "match",
                             str(items(workdir / "items.jsonl", 3000))],
                            cwd=workdir, env=environ(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"] == "s0"
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("n", [2, 3000])
def test_a_full_disk_under_the_output_is_said_without_a_trace(workdir: Path, n: int) -> None:
    with open("/dev/full", "w") as full:
        done = run(workdir, "match", str(items(workdir / "items.jsonl", n)),
                   stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == 1
    assert done.stderr == "news-monitor: No space left on device\n"


def test_the_installed_command_ends_the_same_way(workdir: Path) -> None:
    script = Path(sys.executable).parent / "news-monitor"
    if not script.exists():
        pytest.skip("news-monitor is not installed beside this interpreter")
    done = subprocess.run([str(script), "match", str(items(workdir / "items.jsonl", 500))],
                          cwd=workdir, env=environ(), capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(done.stdout.splitlines()) == 500
