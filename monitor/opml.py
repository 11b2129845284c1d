"""OPML in and out for ``feeds import`` and ``feeds export`` (stdlib only)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr


def import_opml(data: bytes) -> list[tuple[str, str | None]]:
    """(url, name) of every outline with an ``xmlUrl``, in document order.

    Raises ValueError for a document that is no OPML. Entity declarations are
    refused outright: an OPML file never needs them, and they are how XML
    bombs and external-entity reads work.
    """
    if b"<!ENTITY" in data.upper():
        raise ValueError("refusing an OPML file that declares XML entities")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ValueError(f"not OPML: {e}") from None
    if root.tag.lower() != "opml":
        raise ValueError(f"not OPML: the root element is <{root.tag}>")
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if url and url not in seen:
            seen.add(url)
            out.append((url, (node.get("title") or node.get("text") or "").strip() or None))
    return out


def export_opml(feeds: list[tuple[str, str | None]], title: str = "news-monitor feeds") -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_text(title)}</title></head>", "  <body>"]
    for url, name in feeds:
        label = name or url
        lines.append(f"    <outline type=\"rss\" text={quoteattr(label)} "
                     f"title={quoteattr(label)} xmlUrl={quoteattr(url)}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
