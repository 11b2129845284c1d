"""Digest content, pure: grouping, subjects, highlights, Slack blocks, webhook JSON.

No I/O here except one subprocess that checks what importing monitor.digest
loads. Which hits are one story: tests/test_stories.py.
"""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hits import T0, TITLES, hit
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import digest as D
from monitor import highlight
from monitor.channels.slack import slack_escape, slack_messages
from monitor.channels.templates import Renderer
from monitor.channels.webhook import sign, verify, webhook_document
from monitor.models import Evidence, Severity, StoredHit
from monitor.text import strip_control


def distinct(n: int, rule: str = "cpc-disruption", **kw: object) -> list[StoredHit]:
    """``n`` hits that are clearly different stories (different numbers in the titles)."""
    return [hit(f"Pipeline story number {i}", rule=rule, hours=i, **kw)  # type: ignore[arg-type]
            for i in range(n)]


# -- grouping and subjects --------------------------------------------------------


def test_sections_by_topic_and_the_subject_counts_them() -> None:
    hits = distinct(2, "btc-diversion", severity=Severity.MEDIUM) + distinct(5)
    d = D.build_digest("energy", hits, TITLES, T0)
    assert d.subject == "[news-monitor] energy: 7 new stories (CPC disruption 5, BTC diversion 2)"
    assert [s.rule_id for s in d.sections] == ["cpc-disruption", "btc-diversion"]
    assert d.counts == {"cpc-disruption": 5, "btc-diversion": 2}
    assert d.total == 7 and len(d.hit_ids) == 7
    # Newest first within a topic.
    published = [s.published for s in d.sections[0].stories]
    assert published == sorted(published, reverse=True)


def test_a_long_rule_title_is_named_by_its_id_in_the_subject() -> None:
    d = D.build_digest("energy", distinct(1), {"cpc-disruption": "Disruption of the Caspian "
                                                "Pipeline Consortium (CPC)"}, T0)
    assert d.subject == "[news-monitor] energy: 1 new story (cpc-disruption 1)"
    assert d.sections[0].title.startswith("Disruption of the Caspian")


def test_subjects_of_empty_digests_and_alerts() -> None:
    assert D.build_digest("energy", [], TITLES, T0).subject == "[news-monitor] energy: nothing new"
    one = D.build_digest("energy", [hit("Storm halts CPC loadings")], TITLES, T0, kind="alert")
    assert one.subject == "[news-monitor] ALERT energy: CPC disruption: Storm halts CPC loadings"
    two = D.build_digest("energy", distinct(2), TITLES, T0, kind="alert")
    assert two.subject == "[news-monitor] ALERT energy: 2 new stories (CPC disruption 2)"


def test_the_subject_stays_short_with_many_topics() -> None:
    hits = [h for i in range(40) for h in distinct(1, f"rule-number-{i:02d}")]
    d = D.build_digest("energy", hits, {}, T0)
    assert len(d.subject) <= 200 + len("[news-monitor] ")
    assert d.subject.endswith(", …)")
    assert "\n" not in d.subject


def test_feed_text_in_the_subject_is_one_clean_line() -> None:
    d = D.build_digest("energy", [hit("Storm\r\nBcc: x@evil.example\x1b[31m halts CPC")],
                       TITLES, T0, kind="alert")
    assert "\n" not in d.subject and "\r" not in d.subject and "\x1b" not in d.subject
    assert d.subject.endswith("Storm Bcc: x@evil.example halts CPC")


def test_times_are_shown_in_the_desk_time_zone() -> None:
    d = D.build_digest("energy", [hit("Storm halts CPC loadings")], TITLES, T0,
                       timezone="Asia/Almaty")
    assert d.when == "Fri 02 Jan 2026, 08:00 Asia/Almaty"
    assert d.sections[0].stories[0].when == "2 Jan 08:00"


# -- the same story from several outlets ------------------------------------------------


def test_the_same_story_from_three_feeds_is_one_entry() -> None:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, "The consortium said loadings stopped.", feed="Reuters", score=95,
                link="https://reuters.example/a"),
            hit(f"{title} - Interfax", feed="Interfax", hours=1, link="https://interfax.example/b"),
            hit(title.upper().replace("CPC", "CPC's"), feed="Kursiv", hours=2,
                link="https://kursiv.example/c")]
    d = D.build_digest("energy", hits, TITLES, T0)
    [section] = d.sections
    [story] = section.stories
    assert story.outlet == "Reuters" and story.url == "https://reuters.example/a"
    assert [(m.outlet, m.url) for m in story.more] == [
        ("Interfax", "https://interfax.example/b"), ("Kursiv", "https://kursiv.example/c")]
    assert section.count == 1 and sorted(d.hit_ids) == sorted(h.id for h in hits)


@pytest.mark.parametrize(("lang", "lead", "label"), [
    ("ru", "en", "TASS (ru)"),
    ("kk", None, "TASS (kk)"),  # the lead's language unknown: the mention's is news
    ("ru", "ru", "TASS"),
    ("en", "en-us", "TASS"),  # a guessed "en" beside a declared "en-us": one language
    ("en-gb", "en", "TASS"),
    (None, "en", "TASS"),  # nothing declared and nothing guessed: no mark
])
def test_a_mention_marks_its_language_where_the_lead_s_differs(
        lang: str | None, lead: str | None, label: str) -> None:
    mention = D.Mention(hit("x"), "TASS", "x", None, None, T0, "", 90.0, lang=lang,
                        lead_lang=lead)
    assert mention.label == label


# -- highlights, snippets and links --------------------------------------------------------


def test_matched_terms_are_marked_in_title_and_snippet() -> None:
    summary = "Loadings stopped. " * 30 + "The Caspian Pipeline Consortium said so. " + "x " * 200
    start = summary.index("Caspian")
    h = hit("Storm halts CPC loadings", summary, evidence=(
        Evidence("title", "CPC", "CPC", 12, 15, 100.0),
        Evidence("summary", "Caspian Pipeline Consortium", "Caspian Pipeline Consortium",
                 start, start + 27, 100.0),
        Evidence("summary", "bogus", "bogus", 10_000, 10_005, 90.0)))  # out of range: ignored
    story = D.build_digest("energy", [h], TITLES, T0).sections[0].stories[0]
    assert [s for s in story.title if s.mark] == [D.Span("CPC", True)]
    assert [s.text for s in story.snippet if s.mark] == ["Caspian Pipeline Consortium"]
    text = "".join(s.text for s in story.snippet)
    assert text.startswith("… ") and text.endswith(" …") and len(text) <= 250
    assert story.terms == ("CPC", "Caspian Pipeline Consortium", "bogus")


def test_marks_survive_control_characters_and_odd_spacing() -> None:
    title = "Storm\x07  halts\n\nCPC\u200b loadings"
    start = title.index("CPC")
    spans = highlight.highlight(title, [(start, start + 3)])
    assert "".join(s.text for s in spans) == "Storm halts CPC\u200b loadings"
    assert [s.text for s in spans if s.mark] == ["CPC"]


def test_a_very_long_title_is_cut() -> None:
    story = D.build_digest("energy", [hit("word " * 200)], TITLES, T0).sections[0].stories[0]
    assert len(story.title_text) <= 301 and story.title_text.endswith("…")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&c=2"),
    ("http://example.org/путь", "http://example.org/%D0%BF%D1%83%D1%82%D1%8C"),
    ("https://example.org/a|b<c>\"d", "https://example.org/a%7Cb%3Cc%3E%22d"),
    ("javascript:alert(1)", None),
    ("JaVaScRiPt:alert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
    ("ftp://example.org/file", None),
    ("https://bank.example@evil.example/login", None),
    ("https://example.org/a b", None),
    ("https:///nohost", None),
    ("//example.org/relative", None),
    ("https://example.org/" + "a" * 3000, None),
    ("https://example.org\\@evil.example/", None),
    ("https://<!channel>/", None),
    ("https://[::1]:8080/x", "https://[::1]:8080/x"),
    ("HTTPS://Example.ORG/A", "https://example.org/A"),
    ("", None),
    (None, None),
])
def test_safe_url(url: str | None, expected: str | None) -> None:
    assert highlight.safe_url(url) == expected


def test_the_link_host_is_shown_in_ascii() -> None:
    story = D.build_digest("energy", [hit("Storm halts CPC", link="https://reutеrs.example/a")],
                           TITLES, T0).sections[0].stories[0]  # a Cyrillic "е"
    assert story.host == "xn--reutrs-6of.example"


# -- Slack ------------------------------------------------------------------------------------

_LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]*)>")


def _texts(message: dict) -> list[str]:
    out = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", ()))
    return out


def test_slack_message_shape() -> None:
    hits = [hit("Drone strike halts CPC loadings", "The consortium said so.", score=91.4,
                link="https://reuters.example/a?x=1&y=2")]
    [msg] = slack_messages(D.build_digest("energy", hits, TITLES, T0))
    assert msg["unfurl_links"] is False and msg["unfurl_media"] is False
    types = [b["type"] for b in msg["blocks"]]
    assert types == ["header", "context", "section", "section"]
    assert msg["blocks"][0]["text"] == {"type": "plain_text", "emoji": False,
                                        "text": "energy: 1 new story (CPC disruption 1)"}
    story = msg["blocks"][3]["text"]["text"]
    assert story.startswith("• <https://reuters.example/a?x=1&amp;y=2|Drone strike halts CPC "
                            "loadings> — Reuters (reuters.example), 2 Jan 03:00 · score 91")


def test_a_big_digest_is_split_within_slack_limits_keeping_every_hit_in_order() -> None:
    hits = [hit(f"Story {i} about pipeline number {i}", "Summary text " * 30, rule=rule,
                link=f"https://news.example/{rule}/{i}?" + "q" * 150, hours=i)
            for rule in ("cpc-disruption", "btc-diversion", "eaeu-grain-ban")
            for i in range(120)]
    digest = D.build_digest("energy", hits, TITLES, T0)
    messages = slack_messages(digest)
    assert len(messages) > 1
    for n, msg in enumerate(messages, start=1):
        assert len(msg["blocks"]) <= 50
        texts = _texts(msg)
        assert all(len(t) <= 3000 for t in texts)
        assert sum(len(t) for t in texts[1:]) <= 12000
        if n > 1:
            assert msg["blocks"][0]["elements"][0]["text"].endswith(
                f"(part {n} of {len(messages)})")
    links = [m.group(1) for msg in messages for t in _texts(msg) for m in _LINK.finditer(t)]
    expected = [(st.url or "").replace("&", "&amp;") for s in digest.sections for st in s.stories]
    assert links == expected  # each hit once, in the digest's order


def test_a_story_with_many_outlets_is_split_into_lines_within_limits() -> None:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, feed=f"Outlet{i}", link=f"https://o{i}.example/" + "p" * 400)
            for i in range(40)]
    digest = D.build_digest("energy", hits, TITLES, T0)
    assert len(digest.sections[0].stories) == 1
    messages = slack_messages(digest)
    texts = [t for msg in messages for t in _texts(msg)]
    assert all(len(t) <= 3000 for t in texts)
    assert sum(len(_LINK.findall(t)) for t in texts) == 40


def test_feed_text_cannot_mention_or_disguise_a_link_in_slack() -> None:
    evil = ("<!channel> <!here|here> <@U024BE7LH> <#C123> "
            "<https://evil.example|https://bank.example> & @everyone")
    hits = [hit(evil, evil, feed=evil, link="https://news.example/x>|<!channel>")]
    for kind in ("digest", "alert"):
        for msg in slack_messages(D.build_digest(evil, hits, {"cpc-disruption": evil}, T0,
                                                   kind=kind)):
            for text in _texts(msg):
                assert "<!" not in text and "<@" not in text and "<#" not in text
                assert "@everyone" not in text
                # Every remaining '<' opens one of our links, to the hit's (encoded) URL.
                assert text.count("<") == len(_LINK.findall(text))
                for url, _ in _LINK.findall(text):
                    assert url == "https://news.example/x%3E%7C%3C!channel%3E"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_slack_escape_holds_for_any_text(text: str) -> None:
    out = slack_escape(text)
    assert "<" not in out and ">" not in out
    assert re.sub(r"&(?!amp;|lt;|gt;)", "", out) == out  # every & starts an entity
    unescaped = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # Nothing lost but the word joiner that breaks "@channel".
    assert unescaped.replace("@\u2060", "@") == text.replace("@\u2060", "@")


_PIECES = ["<!channel>", "<!here|here>", "<@U1>", "<#C1>", "<https://evil.example|x>",
           "javascript:", "<script>alert(1)</script>", "https://", "\x00", "\x1b[2J", "onload=",
           "\"", "'", "&amp;", "&", "|", "*", "_", "~", "`", "@channel", "\n", " ", "CPC"]
# Hostile fragments mixed with arbitrary text.
_hostile = st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=12).map("".join)


@settings(max_examples=100, deadline=None)
@given(title=_hostile, summary=_hostile, outlet=_hostile, link=_hostile)
def test_slack_blocks_hold_for_any_feed_text(title: str, summary: str, outlet: str,
                                             link: str) -> None:
    hits = [hit(title, summary, feed=outlet, link=link),
            hit(title + " - x", summary, feed=outlet, link="https://ok.example/" + link)]
    for msg in slack_messages(D.build_digest("desk", hits, {"cpc-disruption": title}, T0)):
        for text in _texts(msg):
            assert "<!" not in text and "<@" not in text
            assert text.count("<") == text.count(">") == len(_LINK.findall(text))


# -- HTML email: escaping holds for any input ---------------------------------------------

_ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "table", "tr", "td", "h1", "h2", "p",
                 "a", "b"}


class _Audit(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.attrs: set[str] = set()
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attrs.add(name)
            if name in ("href", "src"):
                self.hrefs.append(value or "")

    def handle_data(self, data: str) -> None:
        self.data.append(data)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(title=_hostile, summary=_hostile, outlet=_hostile, link=_hostile)
def test_html_email_holds_for_any_feed_text(renderer: Renderer, title: str, summary: str,
                                            outlet: str, link: str) -> None:
    hits = [hit(title or "t", summary, feed=outlet, link=link,
                evidence=(Evidence("title", "t", title[:3], 0, min(3, len(title)), 99.0),)),
            hit((title or "t") + " - x", summary, feed=outlet, link="https://ok.example/" + link)]
    for kind in ("digest", "alert"):
        out = renderer.html(D.build_digest("desk", hits, {"cpc-disruption": outlet}, T0,
                                           kind=kind))
        audit = _Audit()
        audit.feed(out)
        assert audit.tags <= _ALLOWED_TAGS
        assert not any(a.startswith("on") for a in audit.attrs)
        assert all(h.startswith(("https://", "http://")) for h in audit.hrefs)
        assert "<script" not in out.lower()
        visible = " ".join("".join(audit.data).split())
        if "\x1b" not in title:  # a highlight may split an escape sequence: not shown whole
            assert " ".join(strip_control(title).split())[:20] in visible


# -- the generic webhook ---------------------------------------------------------------------


def test_webhook_document_carries_every_hit() -> None:
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, evidence=(Evidence("title", "CPC", "CPC", 36, 39, 100.0),)),
            hit(title + " - Interfax", feed="Interfax"),
            hit("Kazakh crude diverted to BTC", rule="btc-diversion", severity=Severity.MEDIUM)]
    doc = webhook_document(D.build_digest("energy", hits, TITLES, T0), delivery_id=42)
    json.dumps(doc)  # serialisable as is
    assert {k: doc[k] for k in ("version", "delivery", "kind", "desk", "total", "counts")} == {
        "version": 1, "delivery": 42, "kind": "digest", "desk": "energy", "total": 2,
        "counts": {"cpc-disruption": 1, "btc-diversion": 1}}
    assert doc["generated_at"] == "2026-01-02T03:00:00Z"
    [story] = doc["sections"][0]["stories"]
    assert [h["id"] for h in story["hits"]] == [hits[0].id, hits[1].id]
    # One story, named the same on each of its hits (the first item's id, for hits
    # stored without a story).
    assert story["story"] == str(hits[0].item_id)
    assert {h["story"] for h in story["hits"]} == {story["story"]}
    assert story["hits"][0]["evidence"] == [{"field": "title", "term": "CPC", "text": "CPC",
                                             "start": 36, "end": 39, "score": 100.0}]
    assert story["terms"] == ["CPC"]
    assert doc["sections"][1]["severity"] == "medium"


def test_webhook_signature_covers_timestamp_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1767322800." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1767322800, body) == "sha256=" + expected
    good = sign("s3cret", 1767322800, body)
    assert verify("s3cret", "1767322800", body, good, now=1767322800 + 10)
    assert not verify("s3cret", "1767322800", body + b" ", good, now=1767322800)
    assert not verify("other", "1767322800", body, good, now=1767322800)
    assert not verify("s3cret", "1767322801", body, good, now=1767322800)  # replayed stamp
    assert not verify("s3cret", "1767322800", body, good, now=1767322800 + 3600)  # too old


# -- the module stays pure -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("module", ["monitor.digest", "monitor.stories", "monitor.highlight",
                                    "monitor.channels.slack", "monitor.channels.webhook",
                                    "monitor.channels.telegram", "monitor.channels.teams"])
def test_importing_loads_no_heavy_library(module: str) -> None:
    """digest and stories are pure; the chat and webhook channels need neither Jinja2
    nor the database (tests/test_settings.py: nor rapidfuzz, for every channel)."""
    code = (f"import sys, {module}; "
            "print(','.join(m for m in ('sqlalchemy', 'aiohttp', 'feedparser', 'jinja2', "
            "'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == ""


# -- the item's own outlet --------------------------------------------------------


def test_an_item_s_own_outlet_is_shown_in_place_of_the_feed_s_name() -> None:
    import dataclasses

    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    plain = [hit(title, "The consortium said loadings stopped.", feed="Google News",
                 score=95, link="https://news.example/a"),
             hit(f"{title} - Interfax", feed="Google News", hours=1,
                 link="https://news.example/b"),
             hit(f"{title} - Kursiv", feed="Kursiv", hours=2, link="https://kursiv.example/c")]
    named = [dataclasses.replace(plain[0], outlet="Reuters"),
             dataclasses.replace(plain[1], outlet="Interfax\x1b[2J"), plain[2]]
    before, after = (D.build_digest("energy", hs, TITLES, T0) for hs in (plain, named))
    [story] = after.sections[0].stories
    assert story.outlet == "Reuters"
    assert [m.outlet for m in story.more] == ["Interfax", "Kursiv"]  # controls cleaned
    # the stories are the same: only the names shown changed
    assert [s.hit_ids for s in before.sections[0].stories] == [story.hit_ids]
    assert before.subject == after.subject
    doc = webhook_document(after)
    assert doc["sections"][0]["stories"][0]["outlet"] == "Reuters"
    for shown in (Renderer().text(after), Renderer().html(after),
                  json.dumps(slack_messages(after), ensure_ascii=False)):
        assert "Reuters" in shown and "Interfax" in shown and "Google News" not in shown


def test_with_a_base_url_each_story_links_to_its_page() -> None:
    from monitor.channels.templates import renderer

    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    hits = [hit(title, link="https://reuters.example/a"),
            hit(title + " - Interfax", feed="Interfax", link="https://interfax.example/b")]
    d = D.build_digest("energy", hits, TITLES, T0, base_url="https://monitor.example.org/")
    [story] = d.sections[0].stories
    assert story.page == f"https://monitor.example.org/hits/{story.lead.id}"
    text, html = renderer(None).text(d), renderer(None).html(d)
    assert f"story: {story.page}" in text
    assert f'href="{story.page}"' in html
    assert f"<{story.page}|story page>" in json.dumps(slack_messages(d))
    assert webhook_document(d)["sections"][0]["stories"][0]["page"] == story.page
    assert D.build_digest("energy", hits, TITLES, T0).sections[0].stories[0].page is None
