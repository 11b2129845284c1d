"""monitor.memory: glibc's malloc arenas capped at start, a no-op elsewhere."""

from __future__ import annotations

import sys

import pytest

from monitor import memory


def test_an_explicit_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_arenas() is False


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_arenas_are_capped_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_arenas() is True


def test_elsewhere_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    memory._glibc.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert memory.limit_arenas() is False
    finally:
        memory._glibc.cache_clear()
