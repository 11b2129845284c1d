"""Feed discovery: the feeds an HTML page announces (``<link rel="alternate">``
of an RSS, Atom or JSON Feed type), as absolute http(s) URLs. Standard library
only (:mod:`html.parser`); never raises on bad input.
"""

from __future__ import annotations

from html.parser import HTMLParser

from monitor.parse._common import http_link

__all__ = ["FEED_TYPES", "feed_links"]

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
    }
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []  # href, type, title
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "").strip() for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        if tag != "link":
            return
        rel = a.get("rel", "").lower().split()
        kind = a.get("type", "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES and a.get("href"):
            self.found.append((a["href"], kind, a.get("title", "")))


def feed_links(body: bytes, base: str) -> list[tuple[str, str]]:
    """(URL, title) of each feed the page at ``base`` links to, in page order, once each."""
    reader = _Links()
    try:
        reader.feed(body[: 4 << 20].decode("utf-8", "replace"))
        reader.close()
    except (AssertionError, ValueError):
        pass  # what was read so far stands
    root = http_link(reader.base, base) or base if reader.base else base
    out: dict[str, str] = {}
    for href, _, title in reader.found:
        url = http_link(href, root)
        if url is not None and url not in out:
            out[url] = title
    return list(out.items())
