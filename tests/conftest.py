"""Shared pytest fixtures, and the rule that tells fast tests from slow ones.

A test is ``slow`` when it starts a process or takes more than about 0.3 s
(tests/README.md). Tests on PostgreSQL are marked here, from their fixtures;
the rest carry the mark in their module. A test outside the slow set that
starts a process fails, saying so, so that ``-m "not slow"`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from standins import clear_proxies

from monitor.store import Store


def _on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return ("postgres_url" in getattr(item, "fixturenames", ())
            or (callspec is not None and callspec.params.get("store_url") == "postgresql"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _on_postgresql(item):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def _no_process(item: pytest.Item) -> Iterator[None]:
    """Make starting a process fail the test, unless it is marked slow."""
    if item.get_closest_marker("slow") is not None:
        yield
        return

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: object, **kwargs: object) -> Any:
            pytest.fail(f"{item.nodeid} starts a process ({what}): a test that does is slow; "
                        "mark it @pytest.mark.slow (tests/README.md)", pytrace=False)
        return refused

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", refuse("subprocess.Popen"))
        for name in ("fork", "system", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                mp.setattr(os, name, refuse(f"os.{name}"))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_process(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_process(item):
        return (yield)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests never go through a proxy the environment names (urllib honours them)."""
    clear_proxies(monkeypatch)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running loopback feed server with an empty routing table (see tests/feedserver.py)."""
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    from pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    server = request.getfixturevalue("postgres_url")
    if server is None:
        pytest.skip("no PostgreSQL: install Debian's postgresql or set NEWS_MONITOR_TEST_POSTGRES")
    from pg import fresh_database, migrated_database

    # A test of the store gets it migrated (and emptied); one that names only
    # store_url gets an empty database, as a first start does.
    if "store" in request.fixturenames:
        return migrated_database(server)
    return fresh_database(server, "nm_test")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()
