"""The shipped unit verifies cleanly, rates an exposure of 2.5 or less, and lets a
daemon with a last good copy start on a broken file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "news-monitor.service"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def _installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's news-monitor."""
    exe = Path(sys.executable).with_name("news-monitor")
    if not exe.exists():
        pytest.skip("news-monitor is not installed in this environment")
    unit = tmp_path / "news-monitor.service"
    unit.write_text(UNIT.read_text().replace("/opt/news-monitor/bin/news-monitor", str(exe)))
    return unit


@pytest.mark.slow
def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    unit = _installed_copy(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "news-monitor.service" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


@pytest.mark.slow
def test_unit_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    unit = _installed_copy(tmp_path)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert m is not None, result.stdout + result.stderr
    assert float(m.group(1)) <= 2.5


def test_unit_has_the_required_settings() -> None:
    text = UNIT.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes",
                    "StateDirectory=", "ConfigurationDirectory=", "EnvironmentFile=",
                    "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                    "PrivateTmp=yes", "PrivateDevices=yes", "RestrictAddressFamilies=",
                    "SystemCallFilter=@system-service", "ExecReload="):
        assert setting in text, setting
    assert re.search(r"^CapabilityBoundingSet=$", text, re.M)


def test_no_start_step_fails_on_a_broken_file() -> None:
    """A check before the start would fail every start of a daemon that can run on its
    last good copy, and StartLimitBurst would then keep it down after the fix."""
    text = UNIT.read_text()
    steps = re.findall(r"^ExecStartPre=(.*)$", text, re.M)
    assert all(step.startswith("-") for step in steps), steps  # "-": a failure is only logged
    assert re.search(r"^StateDirectory=news-monitor$", text, re.M)  # where the copy is kept
    assert re.search(r"^ExecStart=\S+ --config \S+ run$", text, re.M)
