"""Email: multipart text + HTML from the Jinja2 templates, sent over SMTP.

Configuration: a desk's ``email`` (its recipients) and the top-level
``[smtp]`` table (:data:`SMTP`), which a desk with email needs. The body is
:class:`monitor.channels.templates.Renderer`'s text and HTML.

SMTP: ``security = "none"`` (plain), ``"starttls"`` (upgrade, certificate
verified) or ``"tls"`` (implicit TLS, usually port 465); AUTH when a username
is set, the password read from its secret at send time only. Each message has
a Message-ID derived from its delivery (a resend after a crash has the same
one, so mail systems may drop the duplicate), a Date, and a List-Id per desk
that mail filters can sort on.

Timeouts per phase: connecting (TLS included for ``"tls"``) within
:data:`CONNECT_TIMEOUT`, then the greeting and each command's reply within
``[smtp] timeout``. Errors name the phase: connect, greeting, EHLO, STARTTLS,
AUTH, MAIL FROM, RCPT TO, DATA, and the final reply after DATA's ``.``
(``127.0.0.1:25: timed out waiting for the greeting after 30s``).

Errors: 4xx replies, refused connections, timeouts, TLS failures and
disconnections are transient; a 5xx reply is permanent (a recipient that does
not exist will not exist on the next try either). A timeout or a dropped
connection after the final ``.`` is ``uncertain`` (the server may have taken
the message; before it, it cannot have). When only some recipients are
refused the message went out: it counts as sent, and the refusals are logged.

``smtplib``, ``ssl`` and Jinja2 are imported when a message is composed or
sent: the configuration imports this module, and a poll needs none of them.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.channels.base import ChannelSpec, Envelope
from monitor.config_keys import (
    Key,
    Secret,
    Table,
    duration,
    integer,
    one_of,
    secret,
    str_list,
    text,
)
from monitor.errors import ConfigError, NotifyError

if TYPE_CHECKING:
    import smtplib
    import socket
    import ssl
    from email.message import EmailMessage

    from monitor.channels.templates import Renderer
    from monitor.digest import Digest
    from monitor.settings import DeskConfig, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The ``[smtp]`` table."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"
    sender: str = "News Monitor <news-monitor@localhost>"
    username: str = ""
    password: Secret | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class EmailOptions:
    """A desk's email: its recipients."""

    recipients: tuple[str, ...]


SMTP = Table("smtp", (
    Key("host", text("a host name")),
    Key("port", integer(65535)),
    Key("security", one_of("none", "starttls", "tls"), "none, starttls or tls (port 465)"),
    Key("sender", text("an address"), "the From: header"),
    Key("username", text(), "AUTH when set"),
    Key("password", secret, "env:NAME or file:PATH", secret=True),
    Key("timeout", duration),
), SmtpConfig)


def _address(addr: str) -> str | None:
    if re.match(r"^[^@\s<>]+@[^@\s<>]+$", addr):
        return None
    return f"{addr!r} is not an email address"


DESK_KEYS = (Key("email", str_list(_address), "the desk's recipients", field="recipients"),)


def _options(values: Mapping[str, Any]) -> EmailOptions | None:
    return EmailOptions(**values) if values.get("recipients") else None


def _needs_smtp(options: object, smtp: object | None) -> Iterable[tuple[str, str]]:
    if smtp is None:
        yield "email", "a desk with email needs an [smtp] table"


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """The ``[smtp]`` table of ``settings``, if it has one."""
    smtp = settings.channel_tables.get(SMTP.name)
    assert smtp is None or isinstance(smtp, SmtpConfig)
    return smtp


class EmailNotifier:
    channel: ClassVar[str] = "email"

    def __init__(self, smtp: SmtpConfig, recipients: Sequence[str], *,
                 renderer: Renderer | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        from monitor.channels.templates import renderer as shipped

        self.smtp = smtp
        self.recipients = tuple(recipients)
        self.renderer = renderer or shipped(None)
        self.ssl_context = ssl_context

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> EmailNotifier:
        from monitor.channels.templates import renderer

        mine = desk.channel_options[cls.channel]
        smtp = smtp_config(settings)
        assert isinstance(mine, EmailOptions)
        assert smtp is not None  # the configuration requires [smtp] for email
        return cls(smtp, mine.recipients, renderer=renderer(settings.templates_dir),
                   ssl_context=options.get("ssl_context"))

    def compose(self, digest: Digest, envelope: Envelope) -> EmailMessage:
        from email.message import EmailMessage
        from email.utils import format_datetime, parseaddr

        domain = parseaddr(self.smtp.sender)[1].rpartition("@")[2] or "localhost"
        msg = EmailMessage()
        msg["From"] = self.smtp.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = digest.subject
        # The delivery's creation time: a retried message keeps its place in the inbox.
        msg["Date"] = format_datetime(envelope.created_at)
        msg["Message-ID"] = (f"<news-monitor.{envelope.delivery_id}."
                             f"{int(envelope.created_at.timestamp())}@{domain}>")
        msg["List-Id"] = f"news-monitor {digest.desk} <{digest.desk}.news-monitor.{domain}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        msg["X-News-Monitor-Delivery"] = str(envelope.delivery_id)
        msg.set_content(self.renderer.text(digest))
        msg.add_alternative(self.renderer.html(digest), subtype="html")
        return msg

    def send(self, digest: Digest, envelope: Envelope) -> None:
        self.submit(self.compose(digest, envelope))

    def submit(self, msg: EmailMessage) -> None:
        """Hand one message to the SMTP server; return once it answered 250."""
        import smtplib
        import ssl

        cfg = self.smtp
        where = f"{cfg.host}:{cfg.port}"
        context = self.ssl_context or ssl.create_default_context()
        plain, implicit_tls = _clients()
        at = _Progress()
        try:
            if cfg.security == "tls":
                client: smtplib.SMTP = implicit_tls(at, cfg.host, cfg.port, timeout=cfg.timeout,
                                                    context=context)
            else:
                client = plain(at, cfg.host, cfg.port, timeout=cfg.timeout)
        except (smtplib.SMTPException, OSError) as e:
            raise _error(e, where, at, cfg.timeout) from e
        try:
            client.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if cfg.username:
                try:
                    password = cfg.password.reveal() if cfg.password is not None else ""
                except ConfigError as e:
                    raise NotifyError(self.channel, f"secret {cfg.password}: "
                                                    f"{e.problems[0].message}") from e
                client.login(cfg.username, password)
            refused = client.send_message(msg)
        except (smtplib.SMTPException, OSError) as e:
            raise _error(e, where, at, cfg.timeout) from e
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()  # the message is sent or not already; QUIT changes nothing
        if refused:
            log.warning("email: %s refused some recipients (the others got the message): %s",
                        where, "; ".join(f"{addr} {code} {_reply(text)}"
                                         for addr, (code, text) in refused.items()))


#: Seconds to open the connection (and, with ``security = "tls"``, its TLS):
#: short whatever ``[smtp] timeout`` is, which bounds the greeting and each reply.
CONNECT_TIMEOUT = 5.0


@dataclass(slots=True)
class _Progress:
    """Where one SMTP session is: the phase under way, and whether we were writing."""

    phase: str = "connect"
    writing: bool = False


@functools.cache
def _clients() -> tuple[Callable[..., smtplib.SMTP], Callable[..., smtplib.SMTP]]:
    """smtplib's clients (plain, implicit TLS) telling their :class:`_Progress`
    each phase as it starts: ``(progress, host, port, timeout=..., [context=...])``."""
    import smtplib

    class Phased(smtplib.SMTP):
        def __init__(self, at: _Progress, *args: Any, **kwargs: Any) -> None:
            self.at = at  # before SMTP.__init__, which connects and reads the greeting
            super().__init__(*args, **kwargs)

        def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
            sock: socket.socket = super()._get_socket(  # type: ignore[misc]
                host, port, min(timeout, CONNECT_TIMEOUT))
            sock.settimeout(timeout)
            self.at.phase = "greeting"
            return sock

        def send(self, s: Any) -> None:
            self.at.writing = True
            super().send(s)
            self.at.writing = False
            if self.at.phase == "DATA" and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
                self.at.phase = "final reply"  # the message is all out: its fate is the server's

        def putcmd(self, cmd: str, args: str = "") -> None:
            # RSET and QUIT (after a refusal, at the end) and AUTH's continuation
            # lines leave the phase as it was: what failed is what they follow.
            self.at.phase = _COMMANDS.get(cmd.lower(), self.at.phase)
            super().putcmd(cmd, args)

    class PhasedTLS(Phased, smtplib.SMTP_SSL):
        pass

    return Phased, PhasedTLS


# The phases a command starts, as errors name them (smtplib sends some lower-case).
_COMMANDS = {"ehlo": "EHLO", "helo": "HELO", "starttls": "STARTTLS", "auth": "AUTH",
             "mail": "MAIL FROM", "rcpt": "RCPT TO", "data": "DATA"}


def _reply(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())[:200]


def _awaited(phase: str) -> str:
    if phase == "greeting":
        return "the greeting"
    if phase == "final reply":
        return "the reply to the message (DATA's final '.')"
    return f"the reply to {phase}"


def _error(e: BaseException, where: str, at: _Progress, timeout: float) -> NotifyError:
    """An SMTP failure as a NotifyError naming the phase: 5xx permanent, anything
    else transient; a timeout or a dropped connection after the message was
    all out (DATA's final '.') is ``uncertain``: the server may have taken it."""
    import smtplib
    import ssl

    phase = at.phase
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in e.recipients.values()]
        detail = "; ".join(f"{addr} {code} {_reply(text)}"
                           for addr, (code, text) in e.recipients.items())
        return NotifyError("email", f"{where}: recipients refused: {detail}",
                           permanent=all(500 <= c < 600 for c in codes))
    if isinstance(e, smtplib.SMTPResponseException):
        step = {smtplib.SMTPSenderRefused: "sender refused",
                smtplib.SMTPConnectError: "greeting refused",
                smtplib.SMTPHeloError: f"{phase} refused",
                smtplib.SMTPAuthenticationError: "authentication failed"}.get(type(e))
        if step is None:
            step = "message refused" if phase == "final reply" else f"{phase} refused"
        return NotifyError("email", f"{where}: {step}: {e.smtp_code} {_reply(e.smtp_error)}",
                           permanent=500 <= e.smtp_code < 600)
    # smtplib turns a timeout into "Connection unexpectedly closed: timed out"
    # (SMTPServerDisconnected) raised while handling it: look underneath.
    cause = e.__context__ if isinstance(e, smtplib.SMTPServerDisconnected) else e
    uncertain = phase == "final reply" and not at.writing
    maybe = "; it may have been delivered" if uncertain else ""
    if isinstance(cause, TimeoutError) or isinstance(e, TimeoutError):
        if phase == "connect":
            return NotifyError("email", f"{where}: timed out connecting after "
                                        f"{min(timeout, CONNECT_TIMEOUT):g}s")
        if at.writing:
            return NotifyError("email", f"{where}: timed out after {timeout:g}s sending "
                                        f"{'the message' if phase == 'DATA' else phase}")
        return NotifyError("email", f"{where}: timed out waiting for {_awaited(phase)} after "
                                    f"{timeout:g}s{maybe}", uncertain=uncertain)
    if isinstance(e, smtplib.SMTPServerDisconnected):
        when = ("before the greeting" if phase in ("connect", "greeting")
                else f"during {phase}" if at.writing else f"before answering {phase}"
                if phase != "final reply" else "before answering the message")
        return NotifyError("email", f"{where}: the server closed the connection {when}{maybe}",
                           uncertain=uncertain)
    if isinstance(e, ssl.SSLError):
        return NotifyError("email", f"{where}: TLS ({phase}): {e.reason or type(e).__name__}")
    if isinstance(e, ConnectionRefusedError):
        return NotifyError("email", f"{where}: connection refused")
    if isinstance(e, OSError):
        detail = (e.strerror or type(e).__name__).lower()
        return NotifyError("email", f"{where}: {detail} ({phase}){maybe}", uncertain=uncertain)
    return NotifyError("email", f"{where}: {phase}: {type(e).__name__}: {_reply(str(e))}")


SPEC = ChannelSpec("email", DESK_KEYS, _options, EmailNotifier.for_desk, table=SMTP,
                   cross_check=_needs_smtp)
