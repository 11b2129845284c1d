"""The web view (issue 17): server-rendered pages and a small JSON API over
the store, for desks (browse, search, mark noise) and operators (feeds,
rules, silences, deliveries).

``news-monitor serve`` runs it alone; ``news-monitor run`` runs it in a thread
of the daemon when ``[web] listen`` is set. It reads through the store and
:mod:`monitor.status`, and fetches and sends nothing (an import-linter
contract). Starlette and uvicorn are imported only in this package, and only
when the view starts: no other command pays for them.

* :mod:`monitor.web.app`: the application (routes, templates, safety headers)
* :mod:`monitor.web.auth`: the listening policy and the hashed passwords
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.web.app import Source

__all__ = ["WebServer", "split_listen"]

log = logging.getLogger(__name__)


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as host and port."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class WebServer:
    """uvicorn serving the view on one address, in a thread of its own, with a
    clean stop: :meth:`start` binds (an OSError when the address is taken) and
    returns once it listens; :meth:`stop` ends it within a few seconds."""

    def __init__(self, source: Source, host: str, port: int, *,
                 users: Mapping[str, str] | None = None) -> None:
        import uvicorn

        from monitor.web.app import create_app

        # h11, the asyncio loop and no lifespan or websockets: the smallest
        # uvicorn (the daemon's memory goal), with no log of its own beyond errors.
        self.config = uvicorn.Config(create_app(source, users=users), host=host, port=port,
                                     http="h11", loop="asyncio", lifespan="off", ws="none",
                                     log_config=None, access_log=False, server_header=False,
                                     timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(self.config)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0)."""
        servers: Any = getattr(self.server, "servers", None) or []
        for s in servers:
            for sock in s.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)

    def start(self, timeout: float = 10.0) -> None:
        def run() -> None:
            try:
                self.server.run()
            except BaseException as e:  # SystemExit from a failed bind, too
                self.error = e
            finally:
                started.set()

        started = threading.Event()
        self.thread = threading.Thread(target=run, daemon=True, name="web")
        self.thread.start()
        # uvicorn says started once its sockets listen; a failed bind ends run()
        deadline = threading.Event()
        waited = 0.0
        while not self.server.started and not started.is_set() and waited < timeout:
            deadline.wait(0.02)
            waited += 0.02
        if not self.server.started:
            self.stop()
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}"
                          + (f": {self.error}" if self.error else ""))

    def serve_forever(self) -> None:
        """Run in this thread until SIGINT/SIGTERM (``news-monitor serve``)."""
        self.server.run()
        if not self.server.started:
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}")

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
