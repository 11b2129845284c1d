"""Teams: Adaptive Card rendering (markdown escaping, evidence, splitting under the byte
budget) and sending through a loopback Workflows webhook stand-in (tests/standins.py)."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hits import T0, TITLES, a_digest, big_digest, evidence_for, hit, hostile_hits
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import Reply
from standins import (
    TEAMS_MAX_BYTES,
    TeamsStandIn,
    check_teams_payload,
    teams_error,
)

from monitor import digest as D
from monitor.channels.base import Envelope
from monitor.channels.teams import (
    TEAMS_BUDGET,
    TeamsNotifier,
    TeamsOptions,
    teams_cards,
    teams_escape,
    teams_message,
    teams_size,
)
from monitor.config_keys import Secret
from monitor.errors import NotifyError
from monitor.text import strip_control

ENVELOPE = Envelope(delivery_id=7, created_at=T0)


@pytest.fixture
def flow() -> Iterator[TeamsStandIn]:
    with TeamsStandIn() as server:
        yield server


@pytest.fixture
def webhook(flow: TeamsStandIn, monkeypatch: pytest.MonkeyPatch) -> Secret:
    monkeypatch.setenv("NM_TEST_TEAMS", flow.url)
    return Secret("env:NM_TEST_TEAMS")


PAREN_LINK = "https://reuters.example/a?x=1&y=(2)"  # a ")" would end a markdown link


def a_teams_digest(kind: str = "digest") -> D.Digest:
    return a_digest(kind, link=PAREN_LINK)


def blocks(element: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every TextBlock of a card or container, in reading order."""
    for item in element.get("body", element.get("items", [])):
        if item["type"] == "TextBlock":
            yield item
        else:
            yield from blocks(item)


# -- reading TextBlock markdown as Teams would ---------------------------------------------

_LINK = re.compile(r"\[((?:\\.|[^\\\[\]])*)\]\((https?://[^\s()\\<>]+)\)")
_SPECIAL = set("\\`*_~[]()<>#&!|{}")
_ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def read_markdown(text: str) -> tuple[list[str], str, list[str]]:
    """(link targets, visible text, markup characters left unescaped outside our links
    and bold markers): what feed text could have turned into formatting."""
    urls = [m.group(2) for m in _LINK.finditer(text)]
    rest = _LINK.sub(lambda m: m.group(1), text)
    out: list[str] = []
    stray: list[str] = []
    i = 0
    while i < len(rest):
        c = rest[i]
        if c == "\\" and i + 1 < len(rest) and rest[i + 1] in _ASCII_PUNCT:
            out.append(rest[i + 1])
            i += 2
        elif rest.startswith("**", i):
            i += 2
        else:
            if c in _SPECIAL:
                stray.append(c)
            out.append(c)
            i += 1
    if re.match(r"\s*(?:[-+*]|[0-9]+[.)])(?:\s|$)", text):
        stray.append("list marker")
    return urls, "".join(out), stray


# -- rendering ---------------------------------------------------------------------------------


def test_card_shape() -> None:
    digest = a_teams_digest()
    [card] = teams_cards(digest)
    message = teams_message(card)
    assert check_teams_payload(json.loads(json.dumps(message))) == card
    assert message["attachments"][0]["contentUrl"] is None
    assert card["msteams"] == {"width": "Full"}
    headline, context, section, story, *_ = card["body"]
    assert headline == {"type": "TextBlock", "wrap": True, "size": "Large", "weight": "Bolder",
                        "text": "energy: 2 new stories \\(CPC disruption 1, BTC diversion 1\\)"}
    assert context["text"] == ("energy · Fri 02 Jan 2026, 08:00 Asia/Almaty · CPC disruption 1 · "
                               "BTC diversion 1")
    assert section["text"] == "CPC disruption · high · 1 new story"
    assert section["weight"] == "Bolder"
    head, snippet, more = story["items"]
    # The link's parentheses are encoded: they would end a markdown link target.
    assert head["text"] == ("[Drone strike halts loadings at CPC terminal near Novorossiysk]"
                            "(https://reuters.example/a?x=1&y=%282%29) — Reuters "
                            "\\(reuters.example\\), 2 Jan 08:00 · score 93")
    assert snippet["text"] == "The **Caspian Pipeline Consortium** said loadings stopped."
    assert more["text"] == "+1 more: [Interfax](https://interfax.example/b)"
    urls = [u for b in blocks(card) for u in read_markdown(b["text"])[0]]
    assert urls == ["https://reuters.example/a?x=1&y=%282%29", "https://interfax.example/b",
                    digest.sections[1].stories[0].url]


def test_alert_and_empty_digest() -> None:
    [alert] = teams_cards(D.build_digest("energy", [hit("Storm halts CPC loadings")],
                                         TITLES, T0, kind="alert"))
    texts = [b["text"] for b in blocks(alert)]
    assert texts[0] == "ALERT energy: CPC disruption: Storm halts CPC loadings"
    assert texts[2].startswith("**CPC disruption**: [Storm halts CPC loadings](https://")
    [empty] = teams_cards(D.build_digest("energy", [], TITLES, T0))
    assert [b["text"] for b in blocks(empty)][-1] == "Nothing new matched since the last digest."


def test_an_unlinked_title_shows_its_evidence_in_bold() -> None:
    title = "Storm halts CPC loadings"
    [card] = teams_cards(D.build_digest("energy", [hit(
        title, link=None, evidence=evidence_for(title, "CPC"))], TITLES, T0))
    head = next(b for b in blocks(card) if "score" in b["text"])
    assert head["text"].startswith("Storm halts **CPC** loadings — Reuters, 2 Jan 03:00")


def test_feed_text_cannot_link_format_or_call_functions() -> None:
    evil = ("[bank](https://evil.example) ![img](https://evil.example/x.png) **bold** _it_ "
            "~~gone~~ `code` <at>General</at> &lt;b&gt; {{DATE(2026-01-02T03:00:00Z, SHORT)}} "
            "# heading | table \\ \\[")
    hits = [hit(evil, evil, feed=evil, link="https://news.example/x)[y](z"),
            hit("- 1. list " + evil, "1. " + evil, feed="+ " + evil, rule="btc-diversion")]
    for kind in ("digest", "alert"):
        for card in teams_cards(D.build_digest(evil, hits, {"cpc-disruption": evil}, T0,
                                               kind=kind)):
            for block in blocks(card):
                urls, _, stray = read_markdown(block["text"])
                assert stray == []
                assert set(urls) <= {"https://news.example/x%29[y]%28z",
                                     hits[1].link}
                assert "{{" not in block["text"].replace("\\{", "")
            texts = " ".join(read_markdown(b["text"])[1] for b in blocks(card))
            assert "[bank](https://evil.example)" in texts  # shown as written


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_escape_holds_for_any_text(text: str) -> None:
    text = " ".join(strip_control(text).split())
    urls, visible, stray = read_markdown(teams_escape(text))
    assert urls == [] and stray == [] and visible == text


_PIECES = ["[", "]", "(", ")", "](https://evil.example)", "[x](https://evil.example)", "*",
           "**", "_", "~", "`", "\\", "<at>", "</at>", "&amp;", "&", "{{", "}}", "DATE(", "#",
           "- ", "1. ", "+ ", "|", "!", "\x00", "\x1b[2J", "Қазақстан", "CPC", " ", "\n"]
_hostile = st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12).map("".join)


@settings(max_examples=100, deadline=None)
@given(title=_hostile, summary=_hostile, outlet=_hostile, link=_hostile)
def test_cards_hold_for_any_feed_text(title: str, summary: str, outlet: str, link: str) -> None:
    hits = hostile_hits(title, summary, outlet, link)
    for kind in ("digest", "alert"):
        digest = D.build_digest("desk", hits, {"cpc-disruption": outlet}, T0, kind=kind)
        cards = teams_cards(digest)
        urls: list[str] = []
        visible = []
        for card in cards:
            assert teams_size(teams_message(card)) <= TEAMS_BUDGET
            check_teams_payload(teams_message(card))
            for block in blocks(card):
                found, text, stray = read_markdown(block["text"])
                assert stray == []
                urls += found
                visible.append(text)
        expected = {(u or "").replace("(", "%28").replace(")", "%29")
                    for s in digest.sections for story in s.stories
                    for u in [story.url, *(m.url for m in story.more)] if u}
        assert set(urls) == expected
        if "\x1b" not in title:
            assert " ".join(strip_control(title).split())[:20] in " ".join(" ".join(visible)
                                                                           .split())


def test_a_big_digest_is_split_under_the_budget_keeping_every_link_in_order() -> None:
    digest = big_digest()
    cards = teams_cards(digest)
    assert len(cards) > 3
    heads = 0
    for n, card in enumerate(cards, start=1):
        size = teams_size(teams_message(card))
        assert size <= TEAMS_BUDGET
        assert size > TEAMS_BUDGET * 0.8 or n == len(cards)  # filled, not cautious
        if n > 1:
            assert card["body"][0]["text"] == teams_escape(
                f"{digest.headline} (part {n} of {len(cards)})")
        heads += sum(1 for b in blocks(card) if " · score " in b["text"])
        # A topic's title never ends a card: it travels with its first story.
        assert card["body"][-1]["type"] == "Container"
    assert heads == digest.stories
    links = [u for card in cards for b in blocks(card) for u in read_markdown(b["text"])[0]]
    assert links == [story.url for s in digest.sections for story in s.stories]


def test_kazakh_text_is_measured_in_bytes() -> None:
    hits = [hit(f"Қазақстан мұнай экспорты {i}: ҚҚС өзгерісі 🛢", "Ақтау портынан "
                "тиеу тоқтатылды, — деді «ҚазМұнайГаз» өкілі. " * 5, hours=i,
                feed="Курсив") for i in range(80)]
    digest = D.build_digest("энергетика", hits, {"cpc-disruption": "КТК кедергілері"}, T0)
    cards = teams_cards(digest)
    assert len(cards) > 1
    sizes = [len(json.dumps(teams_message(c), ensure_ascii=False, separators=(",", ":"))
                 .encode()) for c in cards]
    assert max(sizes) <= TEAMS_BUDGET
    assert max(len(json.dumps(teams_message(c), ensure_ascii=False, separators=(",", ":")))
               for c in cards) < TEAMS_BUDGET * 0.7  # characters are not bytes
    text = " ".join(read_markdown(b["text"])[1] for c in cards for b in blocks(c))
    assert "Қазақстан мұнай экспорты 79: ҚҚС өзгерісі 🛢" in text and "«ҚазМұнайГаз»" in text


def test_a_story_with_too_many_outlets_is_cut_with_an_ellipsis() -> None:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, feed=f"Outlet{i}", link=f"https://o{i}.example/" + "p" * 2000)
            for i in range(40)]
    digest = D.build_digest("energy", hits, TITLES, T0)
    assert len(digest.sections[0].stories) == 1
    [card] = teams_cards(digest)
    assert teams_size(teams_message(card)) <= TEAMS_BUDGET
    more = list(blocks(card))[-1]["text"]
    assert more.startswith("+39 more: [Outlet") and more.endswith(") …")
    assert 3 < len(read_markdown(more)[0]) < 39


@pytest.mark.parametrize("budget", [4000, 8000])
def test_smaller_budgets_are_kept(budget: int) -> None:
    for card in teams_cards(big_digest(10), budget=budget):
        assert teams_size(teams_message(card)) <= budget


# -- sending through the stand-in ---------------------------------------------------------------


def test_posts_an_adaptive_card(flow: TeamsStandIn, webhook: Secret) -> None:
    digest = a_teams_digest()
    TeamsNotifier(webhook, pause=0).send(digest, ENVELOPE)
    assert flow.cards == teams_cards(digest)
    [body] = flow.bodies
    assert json.loads(body) == teams_message(flow.cards[0])


def test_a_split_digest_goes_out_in_order(flow: TeamsStandIn, webhook: Secret) -> None:
    digest = big_digest(60)
    expected = teams_cards(digest)
    assert len(expected) >= 3
    progress: list[int] = []
    TeamsNotifier(webhook, pause=0).send(digest, Envelope(7, T0, 0, progress.append))
    assert flow.cards == expected and progress == list(range(1, len(expected) + 1))
    assert max(len(b) for b in flow.bodies) <= TEAMS_BUDGET < TEAMS_MAX_BYTES


def assert_secret_kept(text: str) -> None:
    assert TeamsStandIn.SIG not in text and "sig=" not in text
    assert "/workflows/" not in text and "5b7f0c2e9a4d" not in text


@pytest.mark.parametrize(("reply", "permanent", "retry_after"), [
    (teams_error(429, "TooManyRequests", "Rate limit is exceeded.", {"Retry-After": "7"}),
     False, 7.0),
    (Reply(408), False, None),
    (teams_error(500, "InternalServerError", "Something went wrong."), False, None),
    (Reply(502, "Bad Gateway"), False, None),
    (Reply(503, "", {"Retry-After": "30"}), False, 30.0),
    (teams_error(400, "InvalidRequestContent", "The card could not be parsed."), True, None),
    (teams_error(403, "DirectApiAuthorizationRequired", "Forbidden."), True, None),
    (teams_error(404, "WorkflowNotFound", "The workflow is disabled."), True, None),
    (teams_error(413, "RequestEntityTooLarge", "Too large."), True, None),
])
def test_failures_are_transient_or_permanent(flow: TeamsStandIn, webhook: Secret,
                                             caplog: pytest.LogCaptureFixture, reply: Reply,
                                             permanent: bool, retry_after: float | None) -> None:
    caplog.set_level(logging.DEBUG)
    flow.fail_at[1] = reply
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(webhook, pause=0).send(a_teams_digest(), ENVELOPE)
    assert err.value.permanent is permanent and err.value.retry_after == retry_after
    assert str(err.value).startswith(f"teams: message: HTTP {reply.status}")
    assert_secret_kept(str(err.value) + caplog.text + repr(err.value))


def test_a_wrong_signature_or_path_is_permanent(flow: TeamsStandIn,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for url, status in ((flow.url.replace(TeamsStandIn.SIG, "forged0sig"), 401),
                        (flow.url.replace("/workflows/5b", "/workflows/00"), 404)):
        monkeypatch.setenv("NM_TEST_TEAMS", url)
        with pytest.raises(NotifyError) as err:
            TeamsNotifier(Secret("env:NM_TEST_TEAMS"), pause=0).send(a_teams_digest(), ENVELOPE)
        assert err.value.permanent and f"HTTP {status}" in str(err.value)
        assert "forged0sig" not in str(err.value)
        assert_secret_kept(str(err.value))
    assert flow.cards == []


def test_a_server_that_echoes_the_url_does_not_leak_it(flow: TeamsStandIn,
                                                      webhook: Secret) -> None:
    flow.fail_at[1] = teams_error(400, "InvalidTemplate", f"Unable to process {flow.url} "
                                  f"(sig {TeamsStandIn.SIG})")
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(webhook, pause=0).send(a_teams_digest(), ENVELOPE)
    assert err.value.permanent and "InvalidTemplate" in str(err.value)
    assert_secret_kept(str(err.value))


def test_resumes_a_split_message_where_it_failed(flow: TeamsStandIn, webhook: Secret) -> None:
    digest = big_digest(60)
    expected = teams_cards(digest)
    assert len(expected) >= 3
    flow.fail_at[2] = teams_error(503, "ServiceUnavailable", "Try again.", {"Retry-After": "1"})
    progress: list[int] = []
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(webhook, pause=0).send(digest, Envelope(7, T0, 0, progress.append))
    assert str(err.value).startswith(f"teams: part 2 of {len(expected)}: HTTP 503")
    assert err.value.retry_after == 1.0 and not err.value.permanent and progress == [1]
    TeamsNotifier(webhook, pause=0).send(digest, Envelope(7, T0, 1, progress.append))
    assert progress == [1, *range(2, len(expected) + 1)]
    posted = [json.loads(b)["attachments"][0]["content"] for b in flow.bodies]
    assert posted == [expected[0], expected[1], *expected[1:]]  # part 2 twice, then the rest
    assert flow.cards == expected


def test_a_missing_secret_is_reported_by_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NM_TEST_NOT_SET", raising=False)
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(Secret("env:NM_TEST_NOT_SET"), pause=0).send(a_teams_digest(), ENVELOPE)
    assert "env:NM_TEST_NOT_SET" in str(err.value) and not err.value.permanent


def test_a_bad_webhook_url_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NM_TEST_TEAMS", "prod-00.westeurope.logic.azure.com/x?sig=S3CR3T")
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(Secret("env:NM_TEST_TEAMS"), pause=0).send(a_teams_digest(), ENVELOPE)
    assert err.value.permanent and "S3CR3T" not in str(err.value)


def test_a_silent_flow_times_out(flow: TeamsStandIn, webhook: Secret) -> None:
    flow.fail_at[1] = Reply(202, delay=1.0)
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(webhook, pause=0, timeout=0.2).send(a_teams_digest(), ENVELOPE)
    assert not err.value.permanent and "timed out" in str(err.value)
    assert_secret_kept(str(err.value))


def test_a_flow_that_is_down_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NM_TEST_TEAMS", f"http://127.0.0.1:{port}{TeamsStandIn.PATH}"
                                        f"?sig={TeamsStandIn.SIG}")
    with pytest.raises(NotifyError) as err:
        TeamsNotifier(Secret("env:NM_TEST_TEAMS"), pause=0).send(a_teams_digest(), ENVELOPE)
    assert not err.value.permanent and "connection refused" in str(err.value)
    assert_secret_kept(str(err.value))


def test_repr_and_options(webhook: Secret) -> None:
    assert repr(TeamsNotifier(webhook)) == "TeamsNotifier(webhook=env:NM_TEST_TEAMS)"
    options = TeamsOptions(webhook)
    n = TeamsNotifier.from_options(options, timeout=5.0, pause=0)
    assert (n.webhook, n.timeout, n.pause) == (webhook, 5.0, 0)




def test_cards_are_paused_between_but_not_before(flow: TeamsStandIn, webhook: Secret,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("monitor.channels.base.time.sleep", slept.append)
    digest = big_digest(60)
    parts = len(teams_cards(digest))
    TeamsNotifier(webhook, pause=2.0).send(digest, Envelope(7, T0, 1))
    assert slept == [2.0] * (parts - 2) and len(flow.cards) == parts - 1
