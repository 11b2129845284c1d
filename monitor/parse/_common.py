"""What every parser of the package shares: from a feed's raw values to an Item.

The bounds on what one item may hold (the ``MAX_*`` constants), an entry's
identity and fingerprint, the cleaners that turn whatever a feed (or
feedparser, or JSON) hands over into bounded plain text and absolute http(s)
links, and the "not a feed" result. No parser is imported here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from monitor.language import guess_language
from monitor.models import Item, ParsedFeed
from monitor.text import fold_whitespace, html_to_text, strip_control, truncate

# Bounds on what one item may hold, so a hostile feed cannot bloat the store.
MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
MAX_LINK = 2_000  # longer links are dropped, not cut: a cut URL leads nowhere
MAX_GUID = 2_000  # longer ids are replaced by their hash: still stable, now bounded
MAX_OUTLET = 200  # an outlet's name; a longer one is cut
MAX_PROBLEM = 500

LEADING_JUNK = b"\xef\xbb\xbf \t\r\n"  # UTF-8 BOM and XML whitespace
# The charset parameter of a Content-Type header.
CHARSET = re.compile(r"""charset\s*=\s*["']?([^\s;"']+)["']?""", re.IGNORECASE)
_ABSOLUTE_HTTP = re.compile(r"https?://[\w.~%!$&'()*+,;=:@-]+(?:[/?#]\S*)?\Z")
_LANG_TAG = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8}){0,4}")
_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


# -- identity -------------------------------------------------------------------


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        # surrogatepass: hostile ids may hold lone surrogates; the hash must not fail
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def item_identity(
    entry_id: str | None,
    link: str | None,
    title: str | None,
    summary: str | None,
    content: Sequence[str] = (),
) -> str:
    """The stable identity of an entry, from its values as the feed gives them.

    The id, else the link, else ``sha256:`` and a hash of the title, summary
    and content, so that even an entry of bare markup has one. Control
    characters are removed (PostgreSQL rejects NUL in text) and an id longer
    than :data:`MAX_GUID` is replaced by its hash.
    """
    for candidate in (entry_id, link):
        if candidate:
            guid = _ID_CONTROL.sub("", candidate).strip()
            if guid:
                return guid if len(guid) <= MAX_GUID else "sha256:" + _digest(guid)
    return "sha256:" + _digest(title or "", summary or "", *content)


def item_fingerprint(title: str, summary: str, *, guid: str = "") -> str:
    """A hash of the normalised (casefolded, whitespace-folded) title and summary.

    It recognises an entry republished under a new id. An entry with neither
    title nor summary has nothing to recognise it by, so its fingerprint is
    derived from ``guid`` instead: empty entries are never taken for each other.
    """
    return _fingerprint_folded(fold_whitespace(title), fold_whitespace(summary), guid)


def _fingerprint_folded(title: str, summary: str, guid: str) -> str:
    # The parser's plain text is folded already; folding again costs ~3 us an item.
    if not title and not summary:
        return _digest("\x00guid", guid)[:32]
    return _digest(title.casefold(), summary.casefold())[:32]


# -- small value cleaners ---------------------------------------------------------


def as_str(value: object) -> str:
    """A field as text: feedparser and JSON may hand over anything."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def plain_text(value: object, limit: int) -> str:
    """The plain text of a field that may hold HTML, cut to ``limit``."""
    return truncate(html_to_text(as_str(value)), limit)


def first_text(candidates: Sequence[str]) -> str:
    """The plain text of the first candidate that has any: a summary of only an
    ``<img>`` gives way to the content."""
    for raw in candidates:
        if raw:
            text = plain_text(raw, MAX_SUMMARY)
            if text:
                return text
    return ""


def date_from_text(value: object) -> datetime | None:
    """An RFC 3339 date, or failing that an RFC 822 one; in UTC."""
    text = as_str(value).strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        import email.utils  # ~10 ms to import, for a fallback most polls never need

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        if when.tzinfo is None:  # no offset given: take it as UTC rather than guess
            return when.replace(tzinfo=UTC)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def http_link(value: object, base: str) -> str | None:
    """An absolute http(s) URL, resolved against ``base``; else None."""
    raw = as_str(value).strip()
    if not raw or _ID_CONTROL.search(raw):
        return None
    if _ABSOLUTE_HTTP.match(raw):  # the usual case, without urllib's ~10 us
        return raw if len(raw) <= MAX_LINK else None
    raw = raw.replace(" ", "%20")
    try:
        # urljoin(base, "https://") is base itself: only a link without a scheme is joined
        link = raw if urlsplit(raw).scheme else urljoin(base, raw)
        parts = urlsplit(link)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(link) > MAX_LINK:
        return None
    return link


def lang_tag(value: object) -> str | None:
    """A language tag as given, lower-cased, with ``_`` as ``-`` (``en_US`` -> ``en-us``).

    Of a list (``Content-Language: kk, ru``) the first; anything that is not
    shaped like a tag (a number, a sentence) is no language.
    """
    if not isinstance(value, str):
        return None
    tag = value.split(",", 1)[0].strip().lower().replace("_", "-")
    return tag if _LANG_TAG.fullmatch(tag) else None


# -- results ----------------------------------------------------------------------


def problem_text(message: str) -> str:
    """A parser's complaint as one bounded line, fit for the feed's last error."""
    return truncate(fold_whitespace(strip_control(message)), MAX_PROBLEM)


def not_feed(url: str, why: str) -> ParsedFeed:
    """The result for a document that holds no feed."""
    return ParsedFeed(url=url, title=None, link=None, language=None, items=(),
                      is_feed=False, problem=problem_text(f"not a feed: {why}"))


def make_item(
    url: str,
    *,
    entry_id: str | None,
    raw_link: str | None,
    raw_title: str,
    raw_summary: str,
    raw_content: Sequence[str],
    plain_summary: str,
    published: datetime | None,
    lang: str | None,
    raw_outlet: object = None,
) -> Item:
    """One entry of the feed at ``url``, from its values as the feed gives them.

    ``raw_outlet`` is who the feed says reported the entry (an aggregator's
    ``<source>``); it is shown, never matched, hashed or used for identity.
    ``lang`` is what the entry or its feed declares; when they declare none, a
    guess from the title and summary (en, ru, kk, or None when unsure).
    """
    guid = item_identity(entry_id, raw_link, raw_title, raw_summary, raw_content)
    title = plain_text(raw_title, MAX_TITLE)
    return Item(
        feed_url=url,
        guid=guid,
        title=title,
        summary=plain_summary,
        link=http_link(raw_link, url),
        published=published,
        lang=lang or guess_language(title, plain_summary),
        fingerprint=_fingerprint_folded(title, plain_summary, guid),
        outlet=plain_text(raw_outlet, MAX_OUTLET) or None if raw_outlet else None,
    )
