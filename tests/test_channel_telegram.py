"""Telegram: HTML rendering (escaping, evidence, splitting at 4,096) and sending through a
loopback Bot API stand-in (tests/standins.py) that parses the HTML as strictly as Telegram."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator

import pytest
from hits import T0, TITLES, a_digest, big_digest, evidence_for, hit, hostile_hits
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import Reply
from standins import (
    TelegramStandIn,
    chat_not_found,
    forbidden,
    migrated,
    parse_telegram_html,
    server_error,
    too_many_requests,
    unauthorized,
    utf16_length,
)

from monitor import digest as D
from monitor.channels.base import Envelope
from monitor.channels.telegram import (
    TELEGRAM_LIMIT,
    TelegramNotifier,
    TelegramOptions,
    telegram_escape,
    telegram_length,
    telegram_messages,
)
from monitor.config_keys import Secret
from monitor.errors import NotifyError
from monitor.text import strip_control

ENVELOPE = Envelope(delivery_id=7, created_at=T0)
TOKEN = TelegramStandIn.TOKEN
CHAT = "-1001234567890"


@pytest.fixture
def api() -> Iterator[TelegramStandIn]:
    with TelegramStandIn() as server:
        yield server


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Secret:
    monkeypatch.setenv("NM_TEST_TELEGRAM", TOKEN)
    return Secret("env:NM_TEST_TELEGRAM")


def notifier(api: TelegramStandIn, token: Secret, chat: str = CHAT, **kw: float
             ) -> TelegramNotifier:
    return TelegramNotifier(token, chat, api_url=api.api_url, pause=0, **kw)


def hrefs(text: str) -> list[str]:
    return [e.href or "" for e in parse_telegram_html(text)[1] if e.tag == "a"]


# -- rendering ---------------------------------------------------------------------------


def test_message_shape() -> None:
    digest = a_digest()
    [text] = telegram_messages(digest)
    lines = text.split("\n")
    assert lines[0] == "<b>energy: 2 new stories (CPC disruption 1, BTC diversion 1)</b>"
    assert lines[1] == ("<i>energy · Fri 02 Jan 2026, 08:00 Asia/Almaty · CPC disruption 1 · "
                        "BTC diversion 1</i>")
    assert lines[3] == "<b>CPC disruption</b> · high · 1 new story"
    # The title links to the story (the '&' of its URL escaped), the matched term in bold.
    assert lines[4] == ('• <a href="https://reuters.example/a?x=1&amp;y=2">Drone strike halts '
                        'loadings at <b>CPC</b> terminal near Novorossiysk</a> — Reuters '
                        '(reuters.example), 2 Jan 08:00 · score 93')
    assert lines[5] == ("    The <b>Caspian Pipeline Consortium</b> said loadings stopped.")
    assert lines[6] == '    +1 more: <a href="https://interfax.example/b">Interfax</a>'
    visible, entities = parse_telegram_html(text)
    bold = [visible[e.start:e.end] for e in entities if e.tag == "b"]
    assert "CPC" in bold and "Caspian Pipeline Consortium" in bold
    assert hrefs(text) == ["https://reuters.example/a?x=1&y=2", "https://interfax.example/b",
                           digest.sections[1].stories[0].url]


def test_alert_and_empty_digest() -> None:
    [alert] = telegram_messages(D.build_digest(
        "energy", [hit("Storm halts CPC loadings", evidence=evidence_for(
            "Storm halts CPC loadings", "CPC"))], TITLES, T0, kind="alert"))
    assert alert.startswith("<b>ALERT energy: CPC disruption: Storm halts CPC loadings</b>")
    assert "• <b>CPC disruption</b>: <a href=" in alert and "· terms: CPC" in alert
    [empty] = telegram_messages(D.build_digest("energy", [], TITLES, T0))
    assert parse_telegram_html(empty)[0].endswith("Nothing new matched since the last digest.")


def test_feed_text_cannot_open_a_tag_or_fake_a_link() -> None:
    evil = ('<a href="https://evil.example">https://bank.example</a> <script>x</script> '
            '&amp; &lt;b&gt; " \' <b>bold</b> </i>')
    hits = [hit(evil, evil, feed=evil, link='https://news.example/x"><a_href="evil')]
    for kind in ("digest", "alert"):
        for text in telegram_messages(D.build_digest(evil, hits, {"cpc-disruption": evil}, T0,
                                                     kind=kind)):
            visible, entities = parse_telegram_html(text)  # strict: every tag ours and closed
            assert {e.tag for e in entities} <= {"b", "i", "a"}
            assert hrefs(text) == ["https://news.example/x%22%3E%3Ca_href=%22evil"]
            assert '<a href="https://evil.example">' in visible  # shown, as text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escape_holds_for_any_text(text: str) -> None:
    text = strip_control(text)
    visible, entities = parse_telegram_html(telegram_escape(text))
    assert visible == text and entities == []


_PIECES = ["<b>", "</b>", "<a href=\"https://evil.example\">", "</a>", "<pre>", "&amp;", "&",
           "&lt;", "&#60;", "&unknown;", "<", ">", "\"", "'", "javascript:", "https://",
           "\x00", "\x1b[2J", "\u202e", "🛢", "Қазақстан", "CPC", " ", "\n", "…"]
_hostile = st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12).map("".join)


@settings(max_examples=100, deadline=None)
@given(title=_hostile, summary=_hostile, outlet=_hostile, link=_hostile)
def test_messages_hold_for_any_feed_text(title: str, summary: str, outlet: str,
                                         link: str) -> None:
    hits = hostile_hits(title, summary, outlet, link)
    for kind in ("digest", "alert"):
        digest = D.build_digest("desk", hits, {"cpc-disruption": outlet}, T0, kind=kind)
        messages = telegram_messages(digest)
        for text in messages:
            assert telegram_length(text) <= TELEGRAM_LIMIT
            visible, entities = parse_telegram_html(text)
            assert {e.tag for e in entities} <= {"b", "i", "a"}
            assert all(h.startswith(("https://", "http://")) for h in hrefs(text))
        visible = parse_telegram_html("\n".join(messages))[0]
        if "\x1b" not in title:  # a highlight may split an escape sequence: not shown whole
            assert " ".join(strip_control(title).split())[:20] in " ".join(visible.split())
        expected = {u for s in digest.sections for story in s.stories
                    for u in [story.url, *(m.url for m in story.more)] if u}
        assert {h for t in messages for h in hrefs(t)} == expected


def test_a_big_digest_is_split_between_stories_keeping_every_link_in_order() -> None:
    digest = big_digest()
    messages = telegram_messages(digest)
    assert len(messages) > 3
    scores = 0
    for n, text in enumerate(messages, start=1):
        assert utf16_length(text) <= 4096  # raw HTML, so the visible text too
        visible, _ = parse_telegram_html(text)
        if n > 1:
            assert visible.startswith(f"{digest.headline} (part {n} of {len(messages)})\n\n")
        scores += visible.count(" · score ")
    assert scores == digest.stories  # no story was cut
    links = [h for text in messages for h in hrefs(text)]
    assert links == [story.url for s in digest.sections for story in s.stories]
    # A topic's title is never the last line of a part: it travels with its first story.
    assert not any(m.rstrip().endswith(" new") for m in messages)


def test_limits_count_utf16_units_kazakh_and_emoji() -> None:
    assert telegram_length("Қазақстан") == 9 and telegram_length("🛢") == 2
    hits = [hit(f"🛢🛢 Қазақстан мұнай экспорты {i}: ҚҚС өзгерісі 🛢", "Ақтау портынан "
                "тиеу тоқтатылды, — деді «ҚазМұнайГаз» өкілі. " * 5, hours=i,
                feed="Курсив")
            for i in range(80)]
    digest = D.build_digest("энергетика", hits, {"cpc-disruption": "КТК кедергілері"}, T0)
    messages = telegram_messages(digest)
    assert len(messages) > 1
    assert all(utf16_length(m) <= 4096 for m in messages)
    assert max(utf16_length(m) for m in messages) > 3500  # parts are filled, not cautious
    visible = parse_telegram_html("\n".join(messages))[0]
    assert "Қазақстан мұнай экспорты 79: ҚҚС өзгерісі" in visible
    assert "«ҚазМұнайГаз»" in visible


def test_a_story_too_long_for_one_message_is_cut_with_an_ellipsis() -> None:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, feed=f"Outlet{i}", link=f"https://o{i}.example/" + "p" * 400)
            for i in range(40)]
    digest = D.build_digest("energy", hits, TITLES, T0)
    assert len(digest.sections[0].stories) == 1
    messages = telegram_messages(digest)
    assert all(utf16_length(m) <= 4096 for m in messages)
    visible, _ = parse_telegram_html(messages[-1])
    assert visible.endswith("…")
    assert len(hrefs(messages[-1])) < 40  # the outlets that fit, each a whole link
    assert all(h.startswith("https://o") for h in hrefs(messages[-1]))


@pytest.mark.parametrize("limit", [300, 500, 1000])
def test_small_limits_are_kept_whatever_cuts(limit: int) -> None:
    digest = big_digest(5, "Summary & <text> " * 40)
    for text in telegram_messages(digest, limit=limit):
        assert utf16_length(text) <= limit
        parse_telegram_html(text)  # never cut inside a tag or an entity


# -- sending through the stand-in -----------------------------------------------------------


def test_sends_html_messages(api: TelegramStandIn, token: Secret) -> None:
    digest = a_digest()
    notifier(api, token).send(digest, ENVELOPE)
    [call] = api.calls
    assert call == {"chat_id": CHAT, "text": telegram_messages(digest)[0], "parse_mode": "HTML",
                    "disable_web_page_preview": True}
    assert api.paths == [f"/bot{TOKEN}/sendMessage"]
    [sent] = api.sent
    assert sent.text.startswith("energy: 2 new stories (CPC disruption 1, BTC diversion 1)")


def test_a_channel_username_is_a_chat_id(api: TelegramStandIn, token: Secret) -> None:
    notifier(api, token, "@energy_desk").send(a_digest(), ENVELOPE)
    assert [s.chat_id for s in api.sent] == ["@energy_desk"]


def test_a_split_digest_goes_out_in_order(api: TelegramStandIn, token: Secret) -> None:
    digest = big_digest(40)
    expected = telegram_messages(digest)
    progress: list[int] = []
    notifier(api, token).send(digest, Envelope(7, T0, 0, progress.append))
    assert [s.html for s in api.sent] == expected
    assert progress == list(range(1, len(expected) + 1))


@pytest.mark.parametrize(("reply", "permanent", "retry_after", "words"), [
    (too_many_requests(7), False, 7.0, "HTTP 429 Too Many Requests: retry after 7"),
    (server_error(), False, None, "HTTP 500 Internal Server Error"),
    (Reply(502, "<html>Bad Gateway</html>"), False, None, "HTTP 502"),
    (chat_not_found(), True, None, "HTTP 400 Bad Request: chat not found (check "
                                   "telegram_chat_id"),
    (unauthorized(), True, None, "HTTP 401 Unauthorized (check telegram_bot_token)"),
    (forbidden(), True, None, "HTTP 403 Forbidden: bot was blocked by the user (add the bot"),
    (forbidden("bot was kicked from the channel chat"), True, None, "kicked"),
    (migrated(-1009876543210), True, None, 'set telegram_chat_id = "-1009876543210"'),
])
def test_failures_are_transient_or_permanent(api: TelegramStandIn, token: Secret,
                                             caplog: pytest.LogCaptureFixture, reply: Reply,
                                             permanent: bool, retry_after: float | None,
                                             words: str) -> None:
    caplog.set_level(logging.DEBUG)
    api.fail_at[1] = reply
    with pytest.raises(NotifyError) as err:
        notifier(api, token).send(a_digest(), ENVELOPE)
    assert err.value.permanent is permanent and err.value.retry_after == retry_after
    assert str(err.value).startswith("telegram: message: HTTP ")
    assert words in str(err.value)
    assert_secret_kept(str(err.value) + caplog.text + repr(err.value))


def assert_secret_kept(text: str) -> None:
    assert TOKEN not in text and TOKEN.partition(":")[2] not in text
    assert "/bot" not in text and "sendMessage" not in text


def test_the_stand_in_refuses_what_telegram_refuses(api: TelegramStandIn, token: Secret,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotifyError) as err:  # a chat the bot is not in
        notifier(api, token, "-1000000000001").send(a_digest(), ENVELOPE)
    assert err.value.permanent and "chat not found" in str(err.value)
    monkeypatch.setenv("NM_TEST_TELEGRAM", "123456789:AAE-another-bots-token")
    with pytest.raises(NotifyError) as err:  # another bot's token
        notifier(api, token).send(a_digest(), ENVELOPE)
    assert err.value.permanent and "HTTP 401" in str(err.value)
    assert "another-bots-token" not in str(err.value)
    assert api.sent == []


def test_resumes_a_split_message_where_it_failed(api: TelegramStandIn, token: Secret) -> None:
    digest = big_digest(40)
    expected = telegram_messages(digest)
    assert len(expected) >= 3
    api.fail_at[2] = too_many_requests(1)
    progress: list[int] = []
    with pytest.raises(NotifyError) as err:
        notifier(api, token).send(digest, Envelope(7, T0, 0, progress.append))
    assert str(err.value).startswith(f"telegram: part 2 of {len(expected)}: HTTP 429")
    assert err.value.retry_after == 1.0 and progress == [1]
    notifier(api, token).send(digest, Envelope(7, T0, 1, progress.append))
    assert progress == [1, *range(2, len(expected) + 1)]
    # Part 2 was refused once, then every part arrived once, in order.
    assert [c["text"] for c in api.calls] == [expected[0], expected[1], *expected[1:]]
    assert [s.html for s in api.sent] == expected


def test_a_server_that_echoes_the_url_does_not_leak_the_token(api: TelegramStandIn,
                                                               token: Secret) -> None:
    api.fail_at[1] = Reply(502, f"upstream failed for POST /bot{TOKEN}/sendMessage")
    with pytest.raises(NotifyError) as err:
        notifier(api, token).send(a_digest(), ENVELOPE)
    assert not err.value.permanent
    assert TOKEN not in str(err.value) and TOKEN.partition(":")[2] not in str(err.value)


def test_a_missing_token_is_reported_by_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_TEST_NOT_SET", raising=False)
    with pytest.raises(NotifyError) as err:
        TelegramNotifier(Secret("env:NM_TEST_NOT_SET"), CHAT, pause=0).send(a_digest(),
                                                                             ENVELOPE)
    assert "env:NM_TEST_NOT_SET" in str(err.value) and not err.value.permanent


@pytest.mark.parametrize("bad", ["123456789:AAE/../../x", "123456789:AAE secret", "notatoken",
                                 "123456789:AAE?x=1#"])
def test_a_malformed_token_is_refused_unquoted(monkeypatch: pytest.MonkeyPatch,
                                               api: TelegramStandIn, bad: str) -> None:
    monkeypatch.setenv("NM_TEST_TELEGRAM", bad)
    with pytest.raises(NotifyError) as err:
        notifier(api, Secret("env:NM_TEST_TELEGRAM")).send(a_digest(), ENVELOPE)
    assert err.value.permanent and bad not in str(err.value)
    assert api.paths == []  # never put in a URL


def test_a_silent_api_times_out(api: TelegramStandIn, token: Secret) -> None:
    api.fail_at[1] = Reply(200, "{}", delay=1.0)
    with pytest.raises(NotifyError) as err:
        notifier(api, token, timeout=0.2).send(a_digest(), ENVELOPE)
    assert not err.value.permanent and "timed out" in str(err.value)
    assert_secret_kept(str(err.value))


def test_an_api_that_is_down_is_transient(token: Secret) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NotifyError) as err:  # nothing listens on the port any more
        TelegramNotifier(token, CHAT, api_url=f"http://127.0.0.1:{port}", pause=0).send(
            a_digest(), ENVELOPE)
    assert not err.value.permanent and "connection refused" in str(err.value)
    assert_secret_kept(str(err.value))


def test_repr_shows_no_secret(token: Secret) -> None:
    text = repr(TelegramNotifier(token, CHAT))
    assert text == ("TelegramNotifier(chat_id='-1001234567890', api='api.telegram.org', "
                    "token=env:NM_TEST_TELEGRAM)")


def test_options_check_chat_id_and_api_url() -> None:
    token = Secret("env:NM_TEST_TELEGRAM")
    for good in ("-1001234567890", "123456", "@energy_desk"):
        assert TelegramOptions(token, good).problems() == []
    for bad in ("", "energy_desk", "@ab", "-100 123", "https://t.me/energy_desk"):
        assert [k for k, _ in TelegramOptions(token, bad).problems()] == ["telegram_chat_id"]
    assert [k for k, _ in TelegramOptions(token, "@energy_desk", "ftp://x").problems()] == [
        "telegram_api_url"]
    n = TelegramNotifier.from_options(TelegramOptions(token, "@energy_desk",
                                                      "http://127.0.0.1:8081/"), pause=0)
    assert (n.chat_id, n.api_url, n.pause) == ("@energy_desk", "http://127.0.0.1:8081", 0)




def test_no_fixed_format_leaks_markup_tags() -> None:
    # Only the three tags the renderer writes appear in its output, whatever the digest.
    texts = telegram_messages(big_digest(10)) + telegram_messages(a_digest("alert"))
    assert {m.group(1) for t in texts for m in re.finditer(r"</?([a-z-]+)", t)} <= {"b", "i",
                                                                                    "a"}


def test_parts_are_paused_between_but_not_before(api: TelegramStandIn, token: Secret,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("monitor.channels.base.time.sleep", slept.append)
    digest = big_digest(40)
    parts = len(telegram_messages(digest))
    TelegramNotifier(token, CHAT, api_url=api.api_url, pause=1.5).send(
        digest, Envelope(7, T0, 1))
    assert slept == [1.5] * (parts - 2) and len(api.sent) == parts - 1
