"""What every channel has in common: its :class:`ChannelSpec`, the :class:`Notifier`
protocol, and a small HTTP POST.

A notifier sends one :class:`~monitor.digest.Digest` and returns only when the
channel confirmed it (SMTP 250, HTTP 2xx); otherwise it raises
:class:`~monitor.errors.NotifyError`, ``permanent`` when resending cannot help
(a 5xx for a recipient, a webhook that no longer exists), with ``retry_after``
when the other side said when to come back. Messages in those errors name the
channel and the cause, never a secret: webhook URLs carry tokens, so they show
their host at most.

HTTP is the standard library's ``urllib.request``: a few synchronous POSTs per
digest need no client library. Each phase has its own timeout: connecting
(:data:`CONNECT_TIMEOUT`, TLS included), then each write and the answer (the
channel's timeout, for the answer in all: a receiver trickling a byte at a
time is cut off as one that says nothing); an error names the phase. A request sent whole whose
answer never came is ``uncertain`` (:class:`~monitor.errors.NotifyError`):
the receiver may have it. Redirects are not followed (a POST that is
redirected is a misconfigured URL, and following it could hand the body and
its signature to another host). ``urllib`` is imported on the first POST: a
channel module is imported with the configuration, which a poll loads too.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

from monitor import __version__
from monitor.errors import ConfigError, NotifyError
from monitor.text import parse_retry_after, strip_control, truncate

if TYPE_CHECKING:
    import urllib.request

    from monitor.config_keys import Key, Secret, Table
    from monitor.digest import Digest
    from monitor.settings import DeskConfig, Settings

USER_AGENT = f"news-monitor/{__version__}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a notifier needs besides the digest: which delivery this is, and progress.

    ``first_part`` > 0 when an earlier attempt already delivered the first
    parts of a message split in several (Slack); ``on_part_sent(n)`` is called
    after each part with the number of parts now delivered, so a retry resumes
    where the failure happened instead of repeating what went out.
    """

    delivery_id: int
    created_at: datetime
    first_part: int = 0
    on_part_sent: Callable[[int], None] | None = None


class Notifier(Protocol):
    """One channel of one desk."""

    channel: ClassVar[str]

    def send(self, digest: Digest, envelope: Envelope) -> None:
        """Deliver ``digest``; return once the channel confirmed. Raises NotifyError."""
        ...


#: Builds a desk's notifier: ``(desk, settings, options) -> Notifier``; ``options``
#: are the Deliverer's (``timeout``, ``slack_pause``, ``ssl_context``...): each
#: channel reads the ones it knows.
NotifierFactory = Callable[["DeskConfig", "Settings", Mapping[str, Any]], Notifier]


def _no_checks(options: object, table: object | None) -> Iterable[tuple[str, str]]:
    return ()


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel, declared: what the configuration reader and the Deliverer need.

    ``desk_keys`` are the channel's keys in ``[[desks]]``
    (:class:`monitor.config_keys.Key`); ``desk_options`` turns the ones a desk
    gives into the channel's frozen options (None: the desk does not use the
    channel); ``table`` is a top-level table of its own (``[smtp]``), if any;
    ``cross_check(options, table value or None)`` yields (desk key, message)
    problems; ``notifier`` builds the desk's :class:`Notifier`.
    """

    name: str
    desk_keys: tuple[Key, ...]
    desk_options: Callable[[Mapping[str, Any]], object | None]
    notifier: NotifierFactory
    table: Table | None = None
    cross_check: Callable[[object, object | None], Iterable[tuple[str, str]]] = _no_checks

    def check(self, options: object, table: object | None) -> Iterable[tuple[str, str]]:
        return self.cross_check(options, table)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str
    headers: Mapping[str, str]


#: Seconds to set up a connection (TCP, a proxy's tunnel, TLS): short, whatever the
#: channel's reply timeout, so an unreachable receiver is told quickly.
CONNECT_TIMEOUT = 5.0


class _Phase(Exception):
    """Which phase of a POST failed: ``connect``, ``send`` or ``reply``; not an
    OSError, so urllib passes it through unwrapped."""

    def __init__(self, phase: str, cause: BaseException) -> None:
        super().__init__(phase)
        self.phase = phase
        self.cause = cause


class _Deadline:
    """Shuts a socket down once ``seconds`` have passed: the socket's timeout bounds
    each read, this the whole answer."""

    def __init__(self, sock: Any, seconds: float | None) -> None:
        self.expired = False
        self._timer = threading.Timer(seconds or 0.0, self._expire, (sock,))
        self._timer.daemon = True
        if seconds is not None:
            self._timer.start()

    def _expire(self, sock: Any) -> None:
        import socket

        self.expired = True
        # The blocked read returns and the answer ends (OSError: it came and was closed).
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


#: The reply deadline of the POST under way in this thread, cancelled when it returns.
_watch = threading.local()


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    import http.client
    import socket
    import urllib.request

    class Phased(http.client.HTTPConnection):
        """Times each phase apart: connecting within CONNECT_TIMEOUT, then every
        read and write within the channel's timeout; says which phase failed."""

        def connect(self) -> None:
            reply = self.timeout
            self.timeout = min(CONNECT_TIMEOUT, reply) if reply is not None else CONNECT_TIMEOUT
            try:
                super().connect()
            except OSError as e:
                raise _Phase("connect", e) from e
            finally:
                self.timeout = reply
            if isinstance(self.sock, socket.socket):
                self.sock.settimeout(reply)

        def send(self, data: Any) -> None:
            try:
                super().send(data)
            except OSError as e:
                raise _Phase("send", e) from e

        def getresponse(self) -> http.client.HTTPResponse:
            _watch.deadline = deadline = _Deadline(self.sock, self.timeout)
            try:
                return super().getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise _Phase("reply", TimeoutError() if deadline.expired else e) from e

    class PhasedTLS(Phased, http.client.HTTPSConnection):
        pass

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Phased, req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            context = getattr(self, "_context", None)
            return self.do_open(PhasedTLS, req, context=context)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # the 3xx surfaces as an HTTPError, classified below

    return urllib.request.build_opener(Http, Https, NoRedirect)


def post(channel: str, url: str, body: bytes, headers: Mapping[str, str], *,
         timeout: float) -> Response:
    """POST ``body``; return the response, whatever its status. Raises NotifyError
    (transient) when no response came, naming the phase: connecting (refused,
    DNS, TLS, or no connection within :data:`CONNECT_TIMEOUT`), sending, or
    waiting ``timeout`` seconds for the answer. A request fully sent whose answer
    never came (timed out, connection dropped) is ``uncertain``: it may have
    been delivered."""
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself may be the secret: say what is wrong, not what it is.
        raise NotifyError(channel, "the configured URL is not an http(s) URL", permanent=True)
    host = parts.hostname
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "User-Agent": USER_AGENT, **headers})
    try:
        try:
            resp = _opener().open(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, _read(e), dict(e.headers.items()))
        except _Phase as e:
            raise _phase_error(channel, host, e, timeout) from e.cause
        except urllib.error.URLError as e:
            reason = e.reason.cause if isinstance(e.reason, _Phase) else e.reason
            raise NotifyError(channel, f"{host}: {_reason(reason)}") from e
        except (OSError, ValueError) as e:
            # URL parsing errors, whose text may quote the URL: only the type is shown.
            raise NotifyError(channel, f"{host}: {type(e).__name__}") from e
        with resp:
            # The status line came: the outcome is known, whatever happens to the body.
            return Response(resp.status, _read(resp), dict(resp.headers.items()))
    finally:
        deadline: _Deadline | None = getattr(_watch, "deadline", None)
        if deadline is not None:
            deadline.cancel()
            _watch.deadline = None


def _read(resp: Any) -> str:
    """Up to 4 KiB of the body; "" when it cannot be read (the status is what counts)."""
    import http.client

    try:
        return _text(resp.read(4096))
    except (OSError, ValueError, http.client.HTTPException):
        return ""


def _phase_error(channel: str, host: str, e: _Phase, timeout: float) -> NotifyError:
    cause = e.cause
    if e.phase == "connect":
        if isinstance(cause, TimeoutError):
            return NotifyError(channel, f"{host}: timed out connecting after "
                                        f"{min(CONNECT_TIMEOUT, timeout):g}s")
        return NotifyError(channel, f"{host}: {_reason(cause)}")
    if e.phase == "send":
        what = "timed out" if isinstance(cause, TimeoutError) else _reason(cause)
        return NotifyError(channel, f"{host}: {what} while sending the request")
    # The request went out whole; its answer did not come: it may have been delivered.
    if isinstance(cause, TimeoutError):
        return NotifyError(channel, f"{host}: timed out waiting for the answer after "
                                    f"{timeout:g}s", uncertain=True)
    return NotifyError(channel, f"{host}: the connection closed before the answer "
                                f"({_reason(cause)})", uncertain=True)


def _reason(reason: object) -> str:
    import http.client
    import socket
    import ssl

    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "host not found"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ssl.SSLError):
        return f"TLS: {reason.reason or type(reason).__name__}"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "closed without a word"
    if isinstance(reason, http.client.HTTPException):
        return f"not an HTTP answer ({type(reason).__name__})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return type(reason).__name__


def _text(data: bytes) -> str:
    return truncate(" ".join(strip_control(data.decode("utf-8", "replace")).split()), 200)


_Part = TypeVar("_Part")


def send_parts(parts: Sequence[_Part], envelope: Envelope, pause: float,
               send_one: Callable[[_Part, str], None]) -> None:
    """Send a message of several ``parts`` in order, ``pause`` seconds apart
    (chat services allow about one message a second), from
    ``envelope.first_part`` on: the parts before it went out in an earlier
    attempt. ``send_one(part, what)`` raises NotifyError; ``what`` names the part
    in errors ("message", or "part 2 of 3"). Each confirmed part of several is
    reported through ``envelope.on_part_sent``, so a retry resumes there."""
    total = len(parts)
    for n, part in enumerate(parts):
        if n < envelope.first_part:
            continue
        if n > envelope.first_part and pause:
            time.sleep(pause)
        send_one(part, f"part {n + 1} of {total}" if total > 1 else "message")
        if envelope.on_part_sent is not None and total > 1:
            envelope.on_part_sent(n + 1)


def reveal(channel: str, secret: Secret, what: str) -> str:
    """A secret's value at send time; a missing one is a (transient) NotifyError
    that names the reference, never a value."""
    try:
        return secret.reveal()
    except ConfigError as e:
        raise NotifyError(channel, f"{what} {secret}: {e.problems[0].message}") from e


def classify(channel: str, resp: Response, what: str) -> NotifyError:
    """The error for a non-2xx response: which statuses are worth retrying.

    429, 408, 425 and 5xx are transient (429 with its Retry-After); any other
    status, 3xx included, is permanent: the request itself, or the URL, is wrong.
    """
    detail = f"{what}: HTTP {resp.status}" + (f" {resp.body}" if resp.body else "")
    transient = resp.status in (408, 425, 429) or resp.status >= 500
    return NotifyError(channel, detail, permanent=not transient,
                       retry_after=parse_retry_after(resp.headers.get("Retry-After")
                                               or resp.headers.get("retry-after")))
