"""JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1), which feedparser's release
does not read: :mod:`json` into the same items as the XML feeds."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from monitor.models import ParsedFeed
from monitor.parse._common import (
    MAX_TITLE,
    as_str,
    date_from_text,
    first_text,
    http_link,
    lang_tag,
    make_item,
    not_feed,
    plain_text,
)

__all__ = ["parse_json_feed"]

_JSONFEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """A JSON document into items; invalid JSON, or JSON that is no JSON Feed,
    is not a feed. Never raises on bad input."""
    doc = _load_json(body)
    if isinstance(doc, str):
        return not_feed(url, doc)
    if isinstance(doc, dict) and _JSONFEED_VERSION.match(as_str(doc.get("version"))):
        return _parse_json(doc, url)
    return not_feed(url, "JSON, but not a JSON Feed (no https://jsonfeed.org/version/)")


def _load_json(body: bytes) -> object:
    """The decoded document, or a string saying why there is none."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        try:
            return json.loads(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as e:
            return f"invalid JSON ({e})"
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[...]]]] nested too deep
        return f"invalid JSON ({e})"


def _parse_json(doc: Mapping[str, Any], url: str) -> ParsedFeed:
    feed_lang = lang_tag(doc.get("language"))
    raw_items = doc.get("items")
    problem = None
    if not isinstance(raw_items, list):
        raw_items = []
        problem = "JSON Feed without an items list"
    items = []
    for raw in raw_items:
        if not isinstance(raw, Mapping):
            continue  # a number or a string in the list: there is no entry to keep
        summary = _json_str(raw, "summary")
        html, text = _json_str(raw, "content_html"), _json_str(raw, "content_text")
        link = _json_str(raw, "url") or _json_str(raw, "external_url")
        items.append(make_item(
            url,
            entry_id=_json_str(raw, "id") or None,
            raw_link=link or None,
            raw_title=_json_str(raw, "title"),
            raw_summary=summary,
            raw_content=[c for c in (html, text) if c],
            # content_text too goes through html_to_text: no summary ever holds a tag
            plain_summary=first_text([summary, html, text]),
            published=date_from_text(raw.get("date_published")) or date_from_text(
                raw.get("date_modified")),
            lang=lang_tag(raw.get("language")) or feed_lang,
        ))
    return ParsedFeed(
        url=url,
        title=plain_text(doc.get("title"), MAX_TITLE) or None,
        link=http_link(doc.get("home_page_url"), url),
        language=feed_lang,
        items=tuple(items),
        is_feed=True,
        problem=problem,
    )


def _json_str(item: Mapping[str, Any], key: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which nothing downstream can encode.
    return _SURROGATES.sub("\ufffd", as_str(item.get(key)))
