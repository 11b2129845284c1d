"""The parse stage: fetched bytes -> :class:`~monitor.models.ParsedFeed` of items.

:func:`parse_feed` sends each document to one parser:

* JSON -> :mod:`~monitor.parse.jsonfeed` (JSON Feed 1.0/1.1, which
  feedparser's release does not read);
* XML -> its headers' charset checked (:mod:`~monitor.parse.defuse`), then
  plain RSS 2.0 -> :mod:`~monitor.parse.plain_rss`, a fast path with the same
  result; everything else (RSS 0.9x/1.0/2.0, Atom, CDF) ->
  :mod:`~monitor.parse.feedparser_path`, which defuses the prolog first;
* a Telegram channel's web preview (``t.me/s/NAME``, recognised by its URL or
  its markup) -> :mod:`~monitor.parse.telegram`.

Every parser builds its items the same way (:mod:`monitor.parse._common`):
every string is bounded (the ``MAX_*`` constants), links are absolute
http(s), each item has a stable identity (:func:`item_identity`) and a
fingerprint (:func:`item_fingerprint`).

:func:`parse_feed` never raises on bad input. A document that holds no feed (an
HTML page, random bytes, an empty body) comes back with ``is_feed=False`` and a
``problem`` saying why; a malformed feed keeps whatever feedparser recovers,
with feedparser's complaint in ``problem``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from monitor.models import ParsedFeed
from monitor.parse._common import (
    LEADING_JUNK,
    MAX_GUID,
    MAX_LINK,
    MAX_SUMMARY,
    MAX_TITLE,
    item_fingerprint,
    item_identity,
    not_feed,
)
from monitor.parse.defuse import fix_charset
from monitor.parse.feedparser_path import feed_from_entries, parse_with_feedparser
from monitor.parse.jsonfeed import parse_json_feed
from monitor.parse.plain_rss import read_plain_rss20
from monitor.parse.telegram import is_telegram_preview, parse_telegram

__all__ = [
    "MAX_GUID",
    "MAX_LINK",
    "MAX_SUMMARY",
    "MAX_TITLE",
    "item_fingerprint",
    "item_identity",
    "parse_feed",
]

_TELEGRAM_URL = re.compile(r"https?://t\.me/s/", re.IGNORECASE)
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None,
               kind: str = "feed") -> ParsedFeed:
    """Parse one fetched document into items; never raises on bad input.

    ``url`` is the feed's URL: it names the items' feed and resolves relative
    links. ``headers`` are the HTTP response headers (any case); the
    ``Content-Type`` charset and ``Content-Language`` are honoured.
    ``kind = "telegram"`` (the feed's configured kind) reads the page as a
    channel's web preview whatever its URL (a mirror of t.me/s/, say); a
    ``feed`` is told apart by its content (and a t.me/s/ URL).
    """
    hdrs = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    body = bytes(body)
    start = body.lstrip(LEADING_JUNK)[:1]
    if not start:
        return not_feed(url, "empty document")
    if kind == "telegram":
        return parse_telegram(body, url)  # a layout it does not know: a clear non-feed
    content_type = hdrs.get("content-type", "").split(";")[0].strip().lower()
    if start in (b"{", b"[") or (content_type in _JSON_TYPES and start != b"<"):
        return parse_json_feed(body, url)
    if start == b"<" and (is_telegram_preview(body) or _TELEGRAM_URL.match(url)):
        return parse_telegram(body, url)
    return _parse_xml(body, url, hdrs)


def _parse_xml(body: bytes, url: str, headers: dict[str, str], *, fast: bool = True
               ) -> ParsedFeed:
    """An XML document (``headers`` with lower-case names) into items.

    ``fast=False`` skips the fast path: the same result, slower (the tests and
    ``bench/bench_parse.py`` compare the two).
    """
    headers = fix_charset(headers, body)
    plain = read_plain_rss20(body, headers) if fast else None
    if plain is None:
        return parse_with_feedparser(body, url, headers)
    feed, entries = plain
    return feed_from_entries(url, headers, feed, entries, bozo=None)
