"""Loopback stand-ins for what the channels talk to: ``Mailbox``, a real SMTP
server (aiosmtpd), ``Hook``, an HTTP endpoint standing in for Slack and
webhook receivers, answering scripted :class:`Reply` values (late ones too),
and ``Silent``, a TCP server that accepts and never says a word."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a real SMTP server -----------------------------------------------------------------


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


class Mailbox:
    """aiosmtpd on 127.0.0.1 that keeps what it accepts, and can be told to refuse:
    ``rcpt_replies[address]`` or ``data_reply`` such as "451 4.3.0 try later";
    or to take the message and answer ``data_delay`` seconds later (late)."""

    def __init__(self, port: int | None = None, **smtp_options: Any) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.data_delay = 0.0
        self.logins: list[tuple[str, str]] = []
        self.options = smtp_options
        self.controller: Controller | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # it has the message; the answer comes late
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        # handled=False: aiosmtpd sends the 235 or 535 reply itself.
        return AuthResult(success=login == ("monitor", "pa55word"), handled=False)

    def start(self) -> Mailbox:
        if "authenticator" in self.options:
            self.options["authenticator"] = self.authenticate
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **self.options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if not part.is_multipart()}


# -- a real HTTP endpoint standing in for Slack and webhooks -----------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: seconds between bytes: the answer comes one byte at a time, each read in time
    trickle: float = 0.0


class LoopbackHTTP:
    """A threaded HTTP server on 127.0.0.1 whose POSTs, read whole, go to
    :meth:`answer`; its :class:`Reply` is sent after the reply's ``delay`` (the
    server side of a timeout test)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = outer.answer(self.path, {k.lower(): v for k, v in self.headers.items()},
                                     body)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                if reply.trickle:
                    head = f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(data)}\r\n\r\n"
                    with contextlib.suppress(OSError):  # the client gave up: it may
                        for byte in head.encode() + data:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Hook(LoopbackHTTP):
    """A Slack or webhook receiver: records each POST (once read whole) and answers
    the next scripted :class:`Reply`, ``otherwise`` once the script runs out (200
    "ok"; ``Reply(delay=40)`` makes a receiver that always answers 40 s late)."""

    def __init__(self, otherwise: Reply | None = None) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.otherwise = otherwise or Reply()
        self.arrived: list[float] = []  # time.monotonic() of each request, read whole

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            self.requests.append(Request(path, headers, body))
            self.arrived.append(time.monotonic())
            return self.replies.popleft() if self.replies else self.otherwise

    def url(self, path: str = "/services/T0001/B0002/S3CR3TTOKEN") -> str:
        return f"{self.base}{path}"


# -- a server that never takes the connection --------------------------------------------------


class Backlogged:
    """TCP on 127.0.0.1 whose accept queue is full and never drained: Linux drops
    the SYN of every further connection, so connecting hangs until the client's
    connect timeout (a receiver behind a black-holing firewall)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.queued = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def __enter__(self) -> Backlogged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.queued.close()
        self.sock.close()


# -- a server that accepts and never speaks ----------------------------------------------------


class Silent:
    """TCP on 127.0.0.1 that accepts connections, lets what comes sit in the
    kernel's buffer, and never answers: an SMTP server that never greets, an
    HTTP server that never replies. ``connections`` counts those accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            self.open.append(conn)  # held open, never written to

    def __enter__(self) -> Silent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way (Linux)
        self.sock.close()
        self.thread.join(5)
        for conn in self.open:
            conn.close()
