"""A throwaway PostgreSQL server for the store suite.

``$NEWS_MONITOR_TEST_POSTGRES`` (a SQLAlchemy URL) wins when set. Otherwise,
when Debian's ``postgresql`` package is installed, a private cluster is made
in a temporary folder, started on a free loopback port and removed at the
end. PostgreSQL refuses to run as root, so as root it runs as ``postgres``.
Without either, the PostgreSQL cases skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator

ENV = "NEWS_MONITOR_TEST_POSTGRES"
RESTART: dict[str, Callable[[], None]] = {}  # restarts the throwaway server, when it is ours


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str | None]:
    """Yield a SQLAlchemy URL of an empty database, or None when none can be had."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    bindir = _bindir()
    if bindir is None:
        yield None
        return
    user: list[str] = []
    tmp = tempfile.mkdtemp(prefix="nm-pg-")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            yield None
            return
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(tmp, "data")
    port = _free_port()

    def run(args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    try:
        run([*user, f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
             "--no-sync"])
        run([*user, f"{bindir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(tmp, "log"),
             "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
             "start"])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        shutil.rmtree(tmp, ignore_errors=True)
        yield None
        return

    def restart() -> None:
        run([*user, f"{bindir}/pg_ctl", "-D", data, "-w", "-m", "fast", "-l",
             os.path.join(tmp, "log"), "restart",
             "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"])

    RESTART["fn"] = restart
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        RESTART.pop("fn", None)
        # Waits until the server has stopped (-w is pg_ctl stop's default).
        subprocess.run([*user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + name


def fresh_database(server_url: str, name: str) -> str:
    """Create (or recreate) an empty database ``name`` on the server; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return _url(server_url, name)


_STORE = "nm_store"  # the database of the store tests, migrated once
_made: dict[str, str] = {}  # server URL -> the schema's fingerprint once migrated

# Everything a test could change about the schema: tables, columns, indexes, and
# the revision Alembic reads. Rows are emptied with TRUNCATE instead.
_FINGERPRINT = """
SELECT md5(coalesce((SELECT string_agg(concat_ws(':', table_name, column_name, data_type,
                                                 is_nullable, column_default), ','
                                       ORDER BY table_name, column_name)
                     FROM information_schema.columns WHERE table_schema = 'public'), '')
           || coalesce((SELECT string_agg(indexdef, ',' ORDER BY indexdef)
                        FROM pg_indexes WHERE schemaname = 'public'), '')
           || coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), ''))
"""


def migrated_database(server_url: str) -> str:
    """The URL of a database with the store's current schema and no rows.

    Migrated once per server; before each test its tables are emptied
    (TRUNCATE, ~10 ms instead of a migration's ~0.1 s), after ending whatever
    connection a test left open. A test that changed the schema (such as the
    recorded revision) leaves a database that is made again from scratch."""
    import sqlalchemy as sa

    url = _url(server_url, _STORE)
    if server_url in _made:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                if conn.execute(sa.text(_FINGERPRINT)).scalar_one() == _made[server_url]:
                    tables = conn.execute(sa.text(
                        "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )).scalar_one()
                    conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                    return url
        except sa.exc.DBAPIError:
            pass  # e.g. alembic_version dropped: made again below
        finally:
            engine.dispose()
    from monitor.store import Store

    Store.open(fresh_database(server_url, _STORE)).close()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        _made[server_url] = conn.execute(sa.text(_FINGERPRINT)).scalar_one()
    engine.dispose()
    return url
