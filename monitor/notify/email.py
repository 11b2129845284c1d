"""Email: multipart text + HTML from Jinja2 templates, sent over SMTP.

Templates: ``digest.txt``, ``digest.html``, ``alert.txt``, ``alert.html`` ship
in ``monitor/templates``; a file of the same name in the configured
``[templates] dir`` overrides one. HTML templates are autoescaped, so feed
text can only ever be text; links are http(s) only (:func:`monitor.digest.safe_url`);
there are no images and no scripts. An override that fails to render is
logged and the shipped template is used instead: a typo must not stop mail.

SMTP: ``security = "none"`` (plain), ``"starttls"`` (upgrade, certificate
verified) or ``"tls"`` (implicit TLS, usually port 465); AUTH when a username
is set, the password read from its secret at send time only. Each message has
a Message-ID derived from its delivery (a resend after a crash has the same
one, so mail systems may drop the duplicate), a Date, and a List-Id per desk
that mail filters can sort on.

Errors: 4xx replies, refused connections, timeouts, TLS failures and
disconnections are transient; a 5xx reply is permanent (a recipient that does
not exist will not exist on the next try either). When only some recipients
are refused the message went out: it counts as sent, and the refusals are logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import jinja2

from monitor.errors import ConfigError, NotifyError
from monitor.notify.base import Envelope

if TYPE_CHECKING:
    from monitor.digest import Digest
    from monitor.settings import DeskConfig, Settings, SmtpConfig

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader,
        # Everything but .txt is escaped, whatever an operator names a template.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"),
                                            disabled_extensions=("txt",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class Renderer:
    """A digest as text and as HTML, from the shipped or the operator's templates."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        shipped = jinja2.FileSystemLoader(TEMPLATES)
        self._shipped = _environment(shipped)
        self._custom = None if templates_dir is None else _environment(
            jinja2.ChoiceLoader([jinja2.FileSystemLoader(templates_dir), shipped]))
        self._reported: set[str] = set()

    def text(self, digest: Digest) -> str:
        return self._render(digest, "txt")

    def html(self, digest: Digest) -> str:
        return self._render(digest, "html")

    def _render(self, digest: Digest, ext: str) -> str:
        name = f"{'alert' if digest.kind == 'alert' else 'digest'}.{ext}"
        if self._custom is not None:
            try:
                return self._custom.get_template(name).render(digest=digest)
            except jinja2.TemplateError as e:
                if name not in self._reported:  # once per template, not per message
                    self._reported.add(name)
                    log.error("template %s: %s: %s; using the shipped one", name,
                              type(e).__name__, e)
        return self._shipped.get_template(name).render(digest=digest)


class EmailNotifier:
    channel: ClassVar[str] = "email"

    def __init__(self, smtp: SmtpConfig, recipients: Sequence[str], *,
                 renderer: Renderer | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.smtp = smtp
        self.recipients = tuple(recipients)
        self.renderer = renderer or Renderer()
        self.ssl_context = ssl_context

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> EmailNotifier:
        assert settings.smtp is not None  # the configuration requires [smtp] for email
        return cls(settings.smtp, desk.email,
                   renderer=options.get("renderer") or Renderer(settings.templates_dir),
                   ssl_context=options.get("ssl_context"))

    def compose(self, digest: Digest, envelope: Envelope) -> EmailMessage:
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
        cfg = self.smtp
        where = f"{cfg.host}:{cfg.port}"
        context = self.ssl_context or ssl.create_default_context()
        try:
            if cfg.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                        context=context)
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except (smtplib.SMTPException, OSError) as e:
            raise _error(e, where) from e
        try:
            client.ehlo()
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
            raise _error(e, where) from e
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()  # the message is sent or not already; QUIT changes nothing
        if refused:
            log.warning("email: %s refused some recipients (the others got the message): %s",
                        where, "; ".join(f"{addr} {code} {_reply(text)}"
                                         for addr, (code, text) in refused.items()))


def _reply(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())[:200]


def _error(e: BaseException, where: str) -> NotifyError:
    """An SMTP failure as a NotifyError: 5xx permanent, anything else transient."""
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in e.recipients.values()]
        detail = "; ".join(f"{addr} {code} {_reply(text)}"
                           for addr, (code, text) in e.recipients.items())
        return NotifyError("email", f"{where}: recipients refused: {detail}",
                           permanent=all(500 <= c < 600 for c in codes))
    if isinstance(e, smtplib.SMTPResponseException):
        step = {smtplib.SMTPSenderRefused: "sender refused",
                smtplib.SMTPDataError: "message refused",
                smtplib.SMTPConnectError: "connection refused by the server",
                smtplib.SMTPHeloError: "greeting refused",
                smtplib.SMTPAuthenticationError: "authentication failed"}.get(type(e), "error")
        return NotifyError("email", f"{where}: {step}: {e.smtp_code} {_reply(e.smtp_error)}",
                           permanent=500 <= e.smtp_code < 600)
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return NotifyError("email", f"{where}: the server closed the connection")
    if isinstance(e, ssl.SSLError):
        return NotifyError("email", f"{where}: TLS: {e.reason or type(e).__name__}")
    if isinstance(e, TimeoutError):
        return NotifyError("email", f"{where}: timed out")
    if isinstance(e, ConnectionRefusedError):
        return NotifyError("email", f"{where}: connection refused")
    if isinstance(e, OSError):
        return NotifyError("email", f"{where}: {(e.strerror or type(e).__name__).lower()}")
    return NotifyError("email", f"{where}: {type(e).__name__}: {_reply(str(e))}")
