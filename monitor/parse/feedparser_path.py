"""The feedparser path: RSS 0.9x/1.0/2.0, Atom and CDF, through feedparser.

feedparser is imported lazily, on the first document that needs it, and only
here (and by the fast path, for its helpers). :func:`feed_from_entries` turns
feedparser's dictionaries into a :class:`~monitor.models.ParsedFeed`, for
feedparser's result and for the fast path's, which has the same shape.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.models import ParsedFeed
from monitor.parse._common import (
    LEADING_JUNK,
    MAX_TITLE,
    as_str,
    first_text,
    http_link,
    lang_tag,
    make_item,
    not_feed,
    plain_text,
    problem_text,
)
from monitor.parse.defuse import defuse_prolog

if TYPE_CHECKING:
    import time

__all__ = ["entry_outlet", "feed_from_entries", "parse_with_feedparser"]

# The stage's logger, named as before the package split: log lines keep their name.
log = logging.getLogger("monitor.parse")

# Atomic group: without it, a run of comments that is not followed by <html
# would be retried in every way of splitting it (exponential).
_HTML_START = re.compile(
    rb"(?>(?:<!--.*?-->\s*)*)<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)

# FeedParserDict is a dict whose get() maps legacy key names on each call (~1.5 us);
# the canonical keys read here are stored as they are, so the plain dict lookup
# is the same answer at a tenth of the cost.
_get = dict.get


def parse_with_feedparser(body: bytes, url: str, headers: dict[str, str]) -> ParsedFeed:
    """One XML document through feedparser; never raises on bad input.

    ``headers`` have lower-case names, the charset already fixed
    (:func:`monitor.parse.defuse.fix_charset`).
    """
    import feedparser  # heavy (~50 ms): only parsing pays

    try:
        # A stream, not bytes: feedparser.parse(b"/etc/passwd") would read the file.
        # Summaries are reduced to plain text here, so sanitising and resolving
        # URIs inside them would be wasted work (~30 % of feedparser's time).
        d = feedparser.parse(io.BytesIO(defuse_prolog(body)), response_headers=headers,
                             sanitize_html=False, resolve_relative_uris=False)
    except Exception as e:  # feedparser has its own bugs on hostile input; the poll goes on
        log.warning("feedparser failed on %s", url, exc_info=True)
        return not_feed(url, f"unreadable document ({type(e).__name__}: {e})")

    entries = d.get("entries") or []
    feed = d.get("feed") or {}
    bozo = d.get("bozo_exception") if d.get("bozo") else None
    if not entries and not d.get("version"):
        # No entries and no recognised root: a feed only if it has a title (an
        # empty CDF channel); an HTML page never has one in feedparser's eyes,
        # but check anyway, as HTML is by far the most common wrong answer.
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if not feed.get("title") or _looks_like_html(body, content_type):
            return not_feed(url, _why_not_feed(body, content_type, bozo))
    return feed_from_entries(url, headers, feed, entries, bozo)


def feed_from_entries(url: str, headers: dict[str, str], feed: dict[str, Any],
                      entries: Sequence[object], bozo: object) -> ParsedFeed:
    """The ParsedFeed of feedparser's ``feed`` and ``entries`` dictionaries.

    ``bozo`` is feedparser's complaint about a malformed document, kept as the
    feed's ``problem``; None for a well-formed one.
    """
    header_lang = lang_tag(headers.get("content-language"))
    feed_lang = lang_tag(feed.get("language"))
    items = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue  # never seen; feedparser's entries are FeedParserDicts
        raw_summary, raw_content = _summary_and_content(entry)
        items.append(make_item(
            url,
            entry_id=as_str(_get(entry, "id")) or None,
            raw_link=as_str(_get(entry, "link")) or None,
            raw_title=as_str(_get(entry, "title")),
            raw_summary=raw_summary,
            raw_content=raw_content,
            plain_summary=first_text([raw_summary, *raw_content]),
            published=_from_struct(_get(entry, "published_parsed")
                                   or _get(entry, "updated_parsed")),
            lang=_entry_lang(entry, header_lang, feed_lang),
            raw_outlet=entry_outlet(entry),
        ))
    return ParsedFeed(
        url=url,
        title=plain_text(feed.get("title"), MAX_TITLE) or None,
        link=http_link(feed.get("link"), url),
        language=feed_lang,
        items=tuple(items),
        is_feed=True,
        problem=problem_text(str(bozo) or type(bozo).__name__) if bozo is not None else None,
    )


def _from_struct(t: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC ``struct_time`` s."""
    if not t:
        return None
    try:
        return datetime(*t[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _entry_lang(entry: dict[str, Any], header_lang: str | None, feed_lang: str | None
                ) -> str | None:
    """The entry's language: its own element, else its ``xml:lang``, else the feed's."""
    own = lang_tag(_get(entry, "language"))
    if own:
        return own
    for key in ("title_detail", "summary_detail"):
        detail = _get(entry, key)
        if isinstance(detail, dict):
            lang = lang_tag(_get(detail, "language"))
            # feedparser fills a detail's language from the Content-Language
            # header too; only an xml:lang in the document says more than the feed.
            if lang and lang != header_lang:
                return lang
    return feed_lang


def entry_outlet(entry: dict[str, Any]) -> str | None:
    """Who the feed says reported the entry, as feedparser gives it; else None.

    RSS 2.0 ``<source url="...">Reuters</source>`` and an Atom entry's
    ``<source><title>`` are both feedparser's ``source.title``: they name the
    feed the entry came from, which is what aggregators (Google News, Yandex
    News, bridges) write. Else an item's own ``dc:publisher`` (feedparser's
    ``publisher_detail.name``: without the e-mail address some add). Not the
    author (a person) and not ``dc:source`` (a URI, by Dublin Core's definition;
    feedparser does not read it). The fast path reads no such document.
    """
    source = _get(entry, "source")
    if isinstance(source, dict):
        title = as_str(_get(source, "title")).strip()
        if title:
            return title
    publisher = _get(entry, "publisher_detail")
    name = as_str(_get(publisher, "name")) if isinstance(publisher, dict) else ""
    return (name or as_str(_get(entry, "publisher"))).strip() or None


def _summary_and_content(entry: dict[str, Any]) -> tuple[str, list[str]]:
    raw_summary = as_str(_get(entry, "summary"))
    content = _get(entry, "content")
    raw_content = [
        as_str(_get(c, "value")) for c in content if isinstance(c, dict)
    ] if isinstance(content, list) else []
    return raw_summary, raw_content


def _looks_like_html(body: bytes, content_type: str) -> bool:
    return content_type == "text/html" or bool(_HTML_START.match(body[:4096].lstrip(LEADING_JUNK)))


def _why_not_feed(body: bytes, content_type: str, bozo: object) -> str:
    if _looks_like_html(body, content_type):
        return "looks like an HTML page"
    if bozo:
        return f"no RSS, Atom or JSON Feed found ({bozo})"
    return "no RSS, Atom or JSON Feed found"
