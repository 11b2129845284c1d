"""The channels against real servers on 127.0.0.1: aiosmtpd for mail, an HTTP server for
Slack and the generic webhook that answers ok, 500, 429 + Retry-After, 404 no_service...

The servers are tests/servers.py's.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from desks import desk_config
from hits import T0, TITLES, hit
from servers import Backlogged, Hook, Mailbox, Reply, Silent, free_port, parts

from monitor import digest as D
from monitor.channels import Envelope, build_notifiers
from monitor.channels.email import EmailNotifier, SmtpConfig
from monitor.channels.slack import SlackNotifier, slack_messages
from monitor.channels.templates import Renderer
from monitor.channels.webhook import WebhookNotifier, verify, webhook_document
from monitor.config_keys import Secret
from monitor.errors import NotifyError
from monitor.models import Evidence
from monitor.settings import DeskConfig, Settings

ENVELOPE = Envelope(delivery_id=7, created_at=T0)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables: loopback tests must not go through one."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


# -- a real SMTP server -------------------------------------------------------------------


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


def smtp(port: int, **kw: Any) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, sender="News Monitor <monitor@example.org>",
                      timeout=5.0, **kw)


def a_digest(kind: str = "digest") -> D.Digest:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, "The Caspian Pipeline Consortium said loadings stopped.", score=93,
                link="https://reuters.example/a?x=1&y=2"),
            hit(title + " - Interfax", feed="Interfax", link="https://interfax.example/b"),
            hit("Kazakh crude diverted to BTC", rule="btc-diversion")]
    return D.build_digest("energy", hits, TITLES, T0, kind=kind, timezone="Asia/Almaty")


# -- a real HTTP endpoint standing in for Slack and webhooks -----------------------------------


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook() as h:
        yield h


# -- TLS material, made once -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                        str(crt), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl cannot make a test certificate")
    return crt, key


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


# -- email --------------------------------------------------------------------------------------


def test_email_is_multipart_text_and_html_with_its_headers(mailbox: Mailbox) -> None:
    notifier = EmailNotifier(smtp(mailbox.port), ["desk@example.org", "chief@example.org"])
    notifier.send(a_digest(), ENVELOPE)
    [got] = mailbox.received
    assert got.sender == "monitor@example.org"
    assert got.recipients == ["desk@example.org", "chief@example.org"]
    msg = got.message
    assert msg["Subject"].strip() == ("[news-monitor] energy: 2 new stories "
                                      "(CPC disruption 1, BTC diversion 1)")
    assert msg["Message-ID"] == f"<news-monitor.7.{int(T0.timestamp())}@example.org>"
    assert msg["List-Id"] == "news-monitor energy <energy.news-monitor.example.org>"
    assert parsedate_to_datetime(msg["Date"]) == T0
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    body = parts(msg)
    assert set(body) == {"text/plain", "text/html"}
    text, page = body["text/plain"], body["text/html"]
    assert "Drone strike halts loadings at CPC terminal near Novorossiysk" in text
    assert "https://reuters.example/a?x=1&y=2" in text and "+1 more:" in text
    assert '<a href="https://reuters.example/a?x=1&amp;y=2"' in page
    assert '<a href="https://interfax.example/b"' in page and ">Interfax</a>" in page
    assert "max-width:600px" in page and "<script" not in page and "<img" not in page
    assert "Fri 02 Jan 2026, 08:00 Asia/Almaty" in text


def test_alert_email_is_the_short_form(mailbox: Mailbox) -> None:
    digest = D.build_digest("energy", [hit("Storm halts CPC loadings", "Long summary " * 50,
                                           evidence=(Evidence("title", "CPC", "CPC", 12, 15,
                                                                100.0),))],
                            TITLES, T0, kind="alert")
    EmailNotifier(smtp(mailbox.port), ["desk@example.org"]).send(digest, ENVELOPE)
    text = parts(mailbox.received[0].message)["text/plain"]
    assert "[CPC disruption] Storm halts CPC loadings" in text
    assert "Matched: CPC" in text and "Long summary" not in text


@pytest.mark.parametrize(("where", "reply", "permanent"), [
    ("data", "451 4.3.0 Try again later", False),
    ("data", "554 5.6.0 Message refused", True),
    ("rcpt", "450 4.2.1 Mailbox busy", False),
    ("rcpt", "550 5.1.1 No such user", True),
])
def test_smtp_replies_are_transient_or_permanent(mailbox: Mailbox, where: str, reply: str,
                                                 permanent: bool) -> None:
    if where == "data":
        mailbox.data_reply = reply
    else:
        mailbox.rcpt_replies["desk@example.org"] = reply
    with pytest.raises(NotifyError) as err:
        EmailNotifier(smtp(mailbox.port), ["desk@example.org"]).send(a_digest(), ENVELOPE)
    assert err.value.permanent is permanent
    assert reply.split()[0] in str(err.value) and str(err.value).startswith("email: 127.0.0.1:")
    assert mailbox.received == []


def test_one_refused_recipient_does_not_stop_the_others(mailbox: Mailbox,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    mailbox.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    EmailNotifier(smtp(mailbox.port), ["gone@example.org", "desk@example.org"]).send(
        a_digest(), ENVELOPE)
    assert [r.recipients for r in mailbox.received] == [["desk@example.org"]]
    assert "gone@example.org 550" in caplog.text


def test_a_mail_server_that_is_down_is_a_transient_failure() -> None:
    with pytest.raises(NotifyError) as err:
        EmailNotifier(smtp(free_port()), ["desk@example.org"]).send(a_digest(), ENVELOPE)
    assert not err.value.permanent
    assert str(err.value).endswith("connection refused")


@pytest.mark.slow
def test_starttls_and_auth(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NM_TEST_SMTP_PASSWORD", "pa55word")
    trust = ssl.create_default_context(cafile=str(cert[0]))
    with Mailbox(tls_context=server_tls(cert), require_starttls=True, authenticator=True,
                 auth_require_tls=True) as box:
        cfg = smtp(box.port, security="starttls", username="monitor",
                   password=Secret("env:NM_TEST_SMTP_PASSWORD"))
        EmailNotifier(cfg, ["desk@example.org"], ssl_context=trust).send(a_digest(), ENVELOPE)
        assert box.logins == [("monitor", "pa55word")] and len(box.received) == 1
        # A wrong password: permanent (535), and the password is nowhere in what we say.
        monkeypatch.setenv("NM_TEST_SMTP_PASSWORD", "wr0ng-pa55")
        with pytest.raises(NotifyError) as err:
            EmailNotifier(cfg, ["desk@example.org"], ssl_context=trust).send(a_digest(),
                                                                             ENVELOPE)
        assert err.value.permanent and "authentication failed: 535" in str(err.value)
        assert "wr0ng-pa55" not in str(err.value) + caplog.text
        # Without the server's certificate trusted: a TLS failure, retried later.
        with pytest.raises(NotifyError) as err:
            EmailNotifier(cfg, ["desk@example.org"]).send(a_digest(), ENVELOPE)
        assert not err.value.permanent and "TLS" in str(err.value)


@pytest.mark.slow
def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    with Mailbox(ssl_context=server_tls(cert)) as box:
        EmailNotifier(smtp(box.port, security="tls"), ["desk@example.org"],
                      ssl_context=ssl.create_default_context(cafile=str(cert[0]))
                      ).send(a_digest(), ENVELOPE)
        assert len(box.received) == 1


def test_operators_may_override_templates(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    (tmp_path / "digest.txt").write_text("{{ digest.desk }}: {{ digest.total }} hits\n")
    (tmp_path / "digest.html").write_text("<p>{{ digest.sections[0].stories[0].outlet }}</p>")
    (tmp_path / "alert.txt").write_text("{% if %}broken")
    renderer = Renderer(tmp_path)
    digest = D.build_digest("energy", [hit("<b>bold</b> move", feed="<i>Outlet</i>")],
                            TITLES, T0)
    assert renderer.text(digest) == "energy: 1 hits\n"
    assert renderer.html(digest) == "<p>&lt;i&gt;Outlet&lt;/i&gt;</p>"  # still autoescaped
    alert = D.build_digest("energy", [hit("Storm")], TITLES, T0, kind="alert")
    for _ in range(2):
        assert "[CPC disruption] Storm" in renderer.text(alert)  # the shipped template
    assert caplog.text.count("template alert.txt") == 1


def test_one_page_override_restyles_digests_and_alerts(tmp_path: Path) -> None:
    (tmp_path / "_page.html").write_text(
        '<main title="{{ digest.desk }}">{% block content %}{% endblock %}</main>\n')
    renderer = Renderer(tmp_path)
    for kind in ("digest", "alert"):
        digest = D.build_digest("energy", [hit("<b>Storm</b> halts CPC", feed="Reuters"),
                                           hit("<b>Storm</b> halts CPC - Interfax",
                                               feed="Interfax")], TITLES, T0, kind=kind)
        html = renderer.html(digest)
        assert html.startswith('<main title="energy">') and html.endswith("</main>\n")
        assert "&lt;b&gt;Storm&lt;/b&gt;" in html and "<b>Storm" not in html
        assert ">Interfax</a>" in html  # the shared "+1 more" piece
        assert "<!DOCTYPE html>" in Renderer().html(digest)  # the shipped page otherwise


# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def slack_secret(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> Secret:
    monkeypatch.setenv("NM_TEST_SLACK", hook.url())
    return Secret("env:NM_TEST_SLACK")


def test_slack_posts_block_kit(hook: Hook, slack_secret: Secret) -> None:
    digest = a_digest()
    SlackNotifier(slack_secret, pause=0).send(digest, ENVELOPE)
    [req] = hook.requests
    assert req.path == "/services/T0001/B0002/S3CR3TTOKEN"
    assert req.headers["content-type"].startswith("application/json")
    assert req.json() == slack_messages(digest)[0]


@pytest.mark.parametrize(("reply", "permanent", "retry_after"), [
    (Reply(500, "rollup_error"), False, None),
    (Reply(503, ""), False, None),
    (Reply(429, "rate_limited", {"Retry-After": "7"}), False, 7.0),
    (Reply(404, "no_service"), True, None),
    (Reply(410, "channel_is_archived"), True, None),
    (Reply(400, "invalid_payload"), True, None),
    (Reply(302, "", {"Location": "/elsewhere"}), True, None),
])
def test_slack_failures(hook: Hook, slack_secret: Secret, caplog: pytest.LogCaptureFixture,
                        reply: Reply, permanent: bool, retry_after: float | None) -> None:
    hook.replies.append(reply)
    with pytest.raises(NotifyError) as err:
        SlackNotifier(slack_secret, pause=0).send(a_digest(), ENVELOPE)
    assert err.value.permanent is permanent and err.value.retry_after == retry_after
    assert str(err.value).startswith(f"slack: message: HTTP {reply.status}")
    assert reply.body in str(err.value)
    assert "S3CR3TTOKEN" not in str(err.value) + caplog.text
    assert [r.path for r in hook.requests] == ["/services/T0001/B0002/S3CR3TTOKEN"]  # no redirect


def test_slack_resumes_a_split_message_where_it_failed(hook: Hook, slack_secret: Secret) -> None:
    hits = [hit(f"Story {i} about pipeline number {i}", "Summary text " * 40, hours=i,
                link=f"https://news.example/{i}?" + "q" * 300) for i in range(150)]
    digest = D.build_digest("energy", hits, TITLES, T0)
    expected = slack_messages(digest)
    assert len(expected) >= 3
    hook.replies.extend([Reply(), Reply(429, "rate_limited", {"Retry-After": "1"})])
    progress: list[int] = []
    envelope = Envelope(7, T0, 0, progress.append)
    with pytest.raises(NotifyError):
        SlackNotifier(slack_secret, pause=0).send(digest, envelope)
    assert progress == [1]
    SlackNotifier(slack_secret, pause=0).send(digest, Envelope(7, T0, 1, progress.append))
    assert progress == [1, *range(2, len(expected) + 1)]
    bodies = [r.json() for r in hook.requests]
    # Part 2 was refused once, then every part arrived once, in order.
    assert bodies == [expected[0], expected[1], *expected[1:]]


def test_a_missing_secret_is_reported_by_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_TEST_NOT_SET", raising=False)
    with pytest.raises(NotifyError) as err:
        SlackNotifier(Secret("env:NM_TEST_NOT_SET"), pause=0).send(a_digest(), ENVELOPE)
    assert "env:NM_TEST_NOT_SET" in str(err.value) and not err.value.permanent


def test_a_bad_webhook_url_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", "notaurl-S3CR3TTOKEN")
    with pytest.raises(NotifyError) as err:
        SlackNotifier(Secret("env:NM_TEST_SLACK"), pause=0).send(a_digest(), ENVELOPE)
    assert err.value.permanent and "S3CR3TTOKEN" not in str(err.value)


def test_a_silent_endpoint_times_out(hook: Hook, slack_secret: Secret) -> None:
    hook.replies.append(Reply(delay=1.0))
    with pytest.raises(NotifyError) as err:
        SlackNotifier(slack_secret, pause=0, timeout=0.2).send(a_digest(), ENVELOPE)
    assert not err.value.permanent and "timed out" in str(err.value)


# -- the generic webhook ---------------------------------------------------------------------


def test_webhook_is_signed_json(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_HOOK_SECRET", "s3cret")
    digest = a_digest("alert")
    WebhookNotifier(hook.url("/ingest"), Secret("env:NM_TEST_HOOK_SECRET"),
                    clock=lambda: 1767322800.5).send(digest, ENVELOPE)
    [req] = hook.requests
    assert req.headers["x-news-monitor-event"] == "alert"
    assert req.headers["x-news-monitor-delivery"] == "7"
    assert req.headers["x-news-monitor-timestamp"] == "1767322800"
    assert verify("s3cret", req.headers["x-news-monitor-timestamp"], req.body,
                  req.headers["x-news-monitor-signature"], now=1767322801)
    assert req.json() == webhook_document(digest, delivery_id=7)


def test_webhook_failures(hook: Hook) -> None:
    notifier = WebhookNotifier(hook.url("/ingest"))
    hook.replies.extend([Reply(502, "bad gateway"), Reply(422, "unprocessable")])
    with pytest.raises(NotifyError) as err:
        notifier.send(a_digest(), ENVELOPE)
    assert not err.value.permanent and str(err.value) == "webhook: 127.0.0.1: HTTP 502 bad gateway"
    with pytest.raises(NotifyError) as err:
        notifier.send(a_digest(), ENVELOPE)
    assert err.value.permanent
    assert "x-news-monitor-signature" not in hook.requests[0].headers  # no secret, no signature


# -- the registry -------------------------------------------------------------------------------


def test_registry_builds_the_channels_a_desk_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_SLACK", "http://127.0.0.1:9/x")
    desk = desk_config("energy", email=("a@example.org",),
                       slack_webhook=Secret("env:NM_TEST_SLACK"), webhook_url="http://127.0.0.1:9/")
    settings = Settings(source="<test>", storage_url="sqlite://", rules_dir=Path("."),
                        channel_tables={"smtp": smtp(25)}, desks=(desk,))
    built = build_notifiers(desk, settings)
    assert {k: type(v).__name__ for k, v in built.items()} == {
        "email": "EmailNotifier", "slack": "SlackNotifier", "webhook": "WebhookNotifier"}
    assert build_notifiers(DeskConfig(name="quiet"), settings) == {}


def test_email_logs_nothing_secret(mailbox: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    EmailNotifier(smtp(mailbox.port, username="", password=Secret("env:UNUSED")),
                  ["desk@example.org"]).send(a_digest(), ENVELOPE)
    assert "env:UNUSED" not in caplog.text and len(mailbox.received) == 1


# -- timeouts per phase, and uncertain sends ------------------------------------------------


@pytest.mark.slow  # it waits out a timeout
def test_a_mail_server_that_never_greets_is_a_greeting_timeout() -> None:
    with Silent() as silent, pytest.raises(NotifyError) as err:
        EmailNotifier(replace(smtp(silent.port), timeout=0.3), ["desk@example.org"]).send(
            a_digest(), ENVELOPE)
    assert str(err.value) == (f"email: 127.0.0.1:{silent.port}: timed out waiting for the "
                              "greeting after 0.3s")
    assert not err.value.permanent and not err.value.uncertain  # nothing was sent


@pytest.mark.slow  # it waits out a timeout
def test_a_late_answer_after_the_final_dot_is_uncertain(mailbox: Mailbox) -> None:
    mailbox.data_delay = 1.0
    with pytest.raises(NotifyError) as err:
        EmailNotifier(replace(smtp(mailbox.port), timeout=0.3), ["desk@example.org"]).send(
            a_digest(), ENVELOPE)
    assert "timed out waiting for the reply to the message (DATA's final '.') after 0.3s" \
        in str(err.value)
    assert err.value.uncertain and not err.value.permanent
    assert len(mailbox.received) == 1  # it had it


@pytest.mark.parametrize(("where", "reply", "phase"), [
    ("rcpt", "450 4.2.1 Mailbox busy", "recipients refused"),
    ("data", "451 4.3.0 Try again later", "message refused"),
])
def test_a_clear_refusal_is_not_uncertain(mailbox: Mailbox, where: str, reply: str,
                                          phase: str) -> None:
    if where == "data":
        mailbox.data_reply = reply
    else:
        mailbox.rcpt_replies["desk@example.org"] = reply
    with pytest.raises(NotifyError) as err:
        EmailNotifier(smtp(mailbox.port), ["desk@example.org"]).send(a_digest(), ENVELOPE)
    assert phase in str(err.value) and not err.value.uncertain


@pytest.mark.slow  # it waits out a timeout
def test_http_phases_late_answer_is_uncertain_refusal_and_5xx_are_not(
        hook: Hook, slack_secret: Secret, monkeypatch: pytest.MonkeyPatch) -> None:
    hook.replies.extend([Reply(delay=1.0), Reply(503, "busy")])
    notifier = SlackNotifier(slack_secret, pause=0, timeout=0.3)
    with pytest.raises(NotifyError) as late:
        notifier.send(a_digest(), ENVELOPE)
    assert late.value.uncertain and "timed out waiting for the answer after 0.3s" in str(
        late.value)
    with pytest.raises(NotifyError) as busy:
        notifier.send(a_digest(), ENVELOPE)
    assert not busy.value.uncertain and "HTTP 503" in str(busy.value)
    monkeypatch.setenv("NM_TEST_SLACK", f"http://127.0.0.1:{free_port()}/x")
    with pytest.raises(NotifyError) as refused:
        notifier.send(a_digest(), ENVELOPE)
    assert not refused.value.uncertain and str(refused.value).endswith("connection refused")
    with Silent() as silent:  # takes the request whole, never answers
        monkeypatch.setenv("NM_TEST_SLACK", f"http://127.0.0.1:{silent.port}/x")
        with pytest.raises(NotifyError) as silence:
            notifier.send(a_digest(), ENVELOPE)
    assert silence.value.uncertain and "timed out waiting for the answer" in str(silence.value)
    with Backlogged() as full:  # its accept queue is full: the SYN goes unanswered
        monkeypatch.setenv("NM_TEST_SLACK", f"http://127.0.0.1:{full.port}/x")
        with pytest.raises(NotifyError) as unreachable:
            notifier.send(a_digest(), ENVELOPE)
    # Nothing was sent: certain, and the connect timeout (never above the reply's) named.
    assert not unreachable.value.uncertain and str(unreachable.value).endswith(
        "timed out connecting after 0.3s")
