"""The package as ops install it: a wheel built from the checkout, installed in a
fresh virtualenv outside it, run from an empty folder (SPEC, Operations: the
wheel carries the shipped rules and templates; the embedded default works from
any folder).

The fresh venv installs only the wheel; it sees this venv's dependencies through
a ``.pth`` line naming this venv's site-packages. A path added by a ``.pth`` line
is not itself scanned for ``.pth`` files, so the editable install's finder there
is never activated: ``monitor`` is the wheel's, which the first test checks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from procenv import cli_env

pytestmark = pytest.mark.slow  # builds a wheel, starts processes

ROOT = Path(__file__).resolve().parent.parent
# What a build does not read, and what a checkout may hold that must not leak into it.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "state", "*.egg-info",
                                     "__pycache__", ".*_cache", ".hypothesis", "tests", "bench")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    empty: Path  # a folder with nothing in it: no monitor.toml, no rules/, no state/

    def run(self, *args: str, **more_env: str) -> subprocess.CompletedProcess[str]:
        env = cli_env("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "PYTHONPATH", "VIRTUAL_ENV")
        env.update(more_env)
        return subprocess.run([str(self.venv / "bin" / "news-monitor"), *args], cwd=self.empty,
                              env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("install")
    # Built from a copy: a build in the checkout would leave build/ there, whose
    # stale files a later build would ship.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("news_monitor-*.whl")

    fresh = tmp / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=120)
    # Only now the dependencies: pip must not see the editable news-monitor beside them.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True).stdout
    (Path(site.strip()) / "test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp / "empty"
    empty.mkdir()
    return Installed(wheel, fresh, empty)


def test_the_wheel_carries_the_rules_templates_and_migrations(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    rules = {p.name for p in (ROOT / "rules").glob("*.yaml")}
    assert rules and {n.removeprefix("monitor/shipped_rules/") for n in names
                      if n.startswith("monitor/shipped_rules/") and n.endswith(".yaml")} == rules
    assert "monitor/shipped_rules/README.md" in names
    templates = {f"monitor/templates/{p.name}" for p in (ROOT / "monitor/templates").iterdir()}
    assert templates and templates <= names
    web = {str(p.relative_to(ROOT)) for folder in ("templates", "static")
           for p in (ROOT / "monitor/web" / folder).iterdir()}
    assert "monitor/web/static/htmx.min.js" in web and web <= names  # the view's files ship
    migrations = {str(p.relative_to(ROOT)) for p in (ROOT / "monitor/store/migrations").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert migrations and migrations <= names
    assert not any(n.startswith(("rules/", "tests/")) for n in names)


def test_the_installed_package_is_the_wheels(installed: Installed) -> None:
    out = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                          "import monitor, monitor.rules as r; print(monitor.__file__); "
                          "print(r.shipped_rules_dir())"],
                         cwd=installed.empty, env=cli_env("PYTHONPATH"), capture_output=True,
                         text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(installed.venv) for p in out), out
    assert out[1].endswith("monitor/shipped_rules")


def test_check_passes_on_the_embedded_default_from_an_empty_folder(installed: Installed) -> None:
    done = installed.run("check")
    assert done.returncode == 0, done.stderr
    assert "<default>" in done.stdout and "4 rules" in done.stdout


def test_rules_test_runs_a_shipped_rule(installed: Installed) -> None:
    done = installed.run("rules", "test", "cpc-disruption", "КТК приостановил отгрузку нефти")
    assert done.returncode == 0, done.stderr
    assert "cpc-disruption" in done.stdout


def test_init_from_the_wheel_writes_a_configuration_that_checks(installed: Installed) -> None:
    target = installed.empty.parent / "etc"
    done = installed.run("init", str(target))
    assert done.returncode == 0, done.stderr
    shipped = {p.name for p in (ROOT / "rules").iterdir() if p.is_file()}
    assert {p.name for p in (target / "rules").iterdir()} == shipped
    done = installed.run("--config", str(target / "monitor.toml"), "check", SMTP_PASSWORD="x")
    assert done.returncode == 0, done.stderr
    assert "4 rules" in done.stdout and re.search(r"\b1 desks?\b", done.stdout)
