"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer

from monitor.store import Store


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
    from pg import fresh_database

    return fresh_database(server, "nm_test")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()
