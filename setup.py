"""Build hook: the wheel carries the shipped rules.

The repository's ``rules/`` is the one source of the shipped watch rules
(SPEC's layout), outside the ``monitor`` package. ``build_py`` copies its
``*.yaml`` files and README.md into ``monitor/shipped_rules/`` of the build
tree, where :func:`monitor.rules.shipped_rules_dir` finds them once installed;
nothing is copied in the checkout, and an editable install reads ``rules/``
itself. Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RULES = Path(__file__).resolve().parent / "rules"
TARGET = ("monitor", "shipped_rules")


def _rule_files() -> list[Path]:
    files = sorted(p for p in RULES.glob("*.y*ml") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"setup.py: no rule files in {RULES}: a wheel without rules is no use")
    readme = RULES / "README.md"
    return [*files, readme] if readme.is_file() else files


class BuildWithRules(build_py):
    """``build_py``, plus the shipped rules copied into the package's build tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the checkout's rules/ is read in place
            return
        target = Path(self.build_lib).joinpath(*TARGET)
        if target.exists():  # a build tree left from an earlier build: no stale rule in it
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in _rule_files():
            self.copy_file(str(path), str(target / path.name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            target = Path(self.build_lib).joinpath(*TARGET)
            outputs.extend(str(target / p.name) for p in _rule_files())
        return outputs


setup(cmdclass={"build_py": BuildWithRules})
