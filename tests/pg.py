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


def fresh_database(server_url: str, name: str, template: str = "template0") -> str:
    """Create (or recreate) database ``name`` on the server as a copy of
    ``template`` (by default empty); return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        # A file copy is the quicker way for a database of a few pages.
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" '
                             "STRATEGY FILE_COPY"))
    engine.dispose()
    return _url(server_url, name)


_TEMPLATE = "nm_template"
_templates: set[str] = set()  # the servers whose template is made


def migrated_database(server_url: str, name: str) -> str:
    """Like :func:`fresh_database`, with the store's current schema already in
    it: a copy of a template database migrated once per server and session
    (~0.03 s a test instead of a migration's ~0.1 s)."""
    if server_url not in _templates:
        from monitor.store import Store

        Store.open(fresh_database(server_url, _TEMPLATE)).close()  # closed: copied only unused
        _templates.add(server_url)
    return fresh_database(server_url, name, template=_TEMPLATE)
