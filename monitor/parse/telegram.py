"""A Telegram public channel's web preview (``https://t.me/s/NAME``) -> items.

Each ``div.tgme_widget_message[data-post="NAME/ID"]`` is a post: its text is
``.tgme_widget_message_text`` (markup to plain text, ``<br>`` to line breaks),
its time ``a.tgme_widget_message_date time[datetime]``. A post becomes an item
whose link (and identity) is ``https://t.me/NAME/ID``, whose title is its first
line without leading emoji noise, and whose summary is its text. Service
messages (a pinned message, a changed photo) and posts without text (a photo
without caption) are no news items. A forwarded post keeps its origin as the
item's outlet. Standard library only (:mod:`html.parser`).

A page with none of the preview's markup is reported as no feed ("the layout
changed?"): a per-feed error, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

from monitor.models import Item, ParsedFeed
from monitor.parse._common import (
    MAX_SUMMARY,
    MAX_TITLE,
    date_from_text,
    item_fingerprint,
    make_item,
    not_feed,
    problem_text,
)
from monitor.text import strip_control, truncate

__all__ = ["is_telegram_preview", "older_page_url", "parse_telegram"]

_MARKER = b"tgme_widget_message"
_CHANNEL_MARKER = b"tgme_channel_info"
_POST = re.compile(r"^([A-Za-z0-9_]{1,64})/(\d{1,12})$")
# What may open a post before its words: emoji, symbols, punctuation, spaces.
_LEADING_NOISE = re.compile(r"^[^\w«\"'(\[]+")
# A link out of Telegram: http(s), not to t.me or telegram.org.
_LINK_OUT = re.compile(r"^https?://(?!(?:[\w-]+\.)*(?:t\.me|telegram\.(?:me|org))(?:[:/]|$))\S+$",
                       re.IGNORECASE)
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "source", "wbr"})


def is_telegram_preview(body: bytes) -> bool:
    """Whether a document is an HTML page in a channel's web preview markup (an
    RSS feed quoting that markup in its entries is not)."""
    start = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not (start.startswith(b"<!doctype html") or start.startswith(b"<html")):
        return False
    head = body[: 1 << 20]
    return _MARKER in head or _CHANNEL_MARKER in head


class _Post:
    __slots__ = ("forwarded", "id", "links", "name", "service", "text", "when")

    def __init__(self, name: str, post_id: str, service: bool) -> None:
        self.name = name
        self.id = post_id
        self.service = service
        self.text: list[str] = []
        self.forwarded: list[str] = []
        self.links: list[str] = []  # links out of the post's text, or its link preview
        self.when: str | None = None


class _Reader(HTMLParser):
    """Collects the posts; depth counting finds where each element ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.posts: list[_Post] = []
        self.title: str | None = None
        self._depth = 0
        self._post: _Post | None = None
        self._post_depth = 0
        self._text_depth = 0  # inside .tgme_widget_message_text when > 0
        self._from_depth = 0  # inside .tgme_widget_message_forwarded_from_name
        self._date = False
        self._in_title = False
        self._title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "title":
            self._in_title = True
        if tag in _VOID:
            if tag == "br" and self._text_depth and self._post is not None:
                self._post.text.append("\n")
            return
        self._depth += 1
        if tag == "div" and "tgme_widget_message" in classes and "data-post" in a:
            m = _POST.match(a["data-post"].strip())
            if m:
                self._post = _Post(m[1], m[2], "service_message" in classes)
                self._post_depth = self._depth
                self.posts.append(self._post)
            return
        post = self._post
        if post is None:
            return
        if tag == "a" and (self._text_depth or "tgme_widget_message_link_preview" in classes):
            href = a.get("href", "").strip()
            if _LINK_OUT.match(href):
                post.links.append(href)
        if "tgme_widget_message_text" in classes and not self._text_depth:
            self._text_depth = self._depth
            if post.text:  # a second text block (a reply's quote, a poll) starts anew
                post.text.append("\n")
        elif "tgme_widget_message_forwarded_from_name" in classes:
            self._from_depth = self._depth
        elif "tgme_widget_message_service_date" in classes or "service_message" in classes:
            post.service = True
        elif tag == "a" and "tgme_widget_message_date" in classes:
            self._date = True
        elif tag == "time" and self._date and post.when is None:
            post.when = a.get("datetime")
        elif self._text_depth and tag in ("p", "div", "blockquote") and post.text:
            post.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _VOID:
            return
        if tag == "a":
            self._date = False
        if self._text_depth == self._depth:
            self._text_depth = 0
        if self._from_depth == self._depth:
            self._from_depth = 0
        if self._post is not None and self._post_depth == self._depth:
            self._post = None
        self._depth = max(0, self._depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        post = self._post
        if post is None:
            return
        if self._text_depth:
            post.text.append(data)
        elif self._from_depth:
            post.forwarded.append(data)

    def close(self) -> None:
        super().close()
        self.title = " ".join("".join(self._title).split()) or None


def _text(parts: list[str]) -> str:
    lines = ("".join(parts)).replace("\r", "").split("\n")
    kept = [" ".join(strip_control(line).split()) for line in lines]
    out: list[str] = []
    for line in kept:  # at most one empty line between paragraphs
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _title(text: str) -> str:
    first = next((line for line in text.split("\n") if line.strip()), "")
    return truncate(_LEADING_NOISE.sub("", first).strip() or first.strip(), MAX_TITLE)


def parse_telegram(body: bytes, url: str) -> ParsedFeed:
    """The posts of a channel's preview page as items (never raises on bad input)."""
    if not is_telegram_preview(body):
        return not_feed(
            url,
            "no Telegram channel preview markup (tgme_widget_message) "
            "in the page: not a t.me/s/ page, or its layout changed",
        )
    reader = _Reader()
    try:
        reader.feed(body.decode("utf-8", "replace"))
        reader.close()
    except (AssertionError, ValueError) as e:  # html.parser on pathological markup
        return not_feed(url, f"unreadable Telegram preview: {e}")
    items: list[Item] = []
    for post in reader.posts:
        text = truncate(_text(post.text), MAX_SUMMARY)
        if post.service or not text:
            continue
        link = f"https://t.me/{post.name}/{post.id}"
        origin = " ".join("".join(post.forwarded).split())
        items.append(
            make_item(
                url,
                entry_id=link,
                raw_link=link,
                raw_title="",
                raw_summary=text,
                raw_content=(),
                plain_summary=text,
                published=date_from_text(post.when),
                lang=None,
                raw_outlet=origin or None,
            )
        )
        # make_item's title cleaner folds lines: the first line is taken here.
        items[-1] = replace(_with_title(items[-1], _title(text)),
                            article_link=post.links[0] if post.links else None)
    problem = None if reader.posts else problem_text("no posts on the channel's page")
    return ParsedFeed(
        url=url,
        title=reader.title,
        link=url,
        language=None,
        items=tuple(items),
        is_feed=True,
        problem=problem,
    )


_LINK_ID = re.compile(r"^https://t\.me/[A-Za-z0-9_]{1,64}/(\d{1,12})$")


def older_page_url(url: str, items: tuple[Item, ...] | list[Item]) -> str | None:
    """The preview page of the posts before the oldest of ``items``
    (``URL?before=ID``, as the page's own "load more" asks), or None."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    ids = [int(m[1]) for i in items if i.link and (m := _LINK_ID.match(i.link))]
    if not ids or min(ids) <= 1:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "before"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("before", str(min(ids)))])))


def _with_title(item: Item, title: str) -> Item:
    return replace(
        item, title=title, fingerprint=item_fingerprint(title, item.summary, guid=item.guid)
    )
