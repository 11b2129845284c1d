"""The golden feed files: ``tests/data/feeds/NAME``, and how each is served.

One table for every test that reads them, so that each file is always parsed
with the headers it is meant to come with (``wrong-charset.xml`` with its
server's wrong ``windows-1251``). The expected result of ``NAME`` is in
``NAME.expected.json`` (``tests/test_parse.py``).
"""

from __future__ import annotations

from pathlib import Path

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"

# name -> (feed URL, response headers) used to parse it
GOLDEN: dict[str, tuple[str, dict[str, str]]] = {
    "rss20-russian.xml": ("https://news.example.ru/rss",
                          {"Content-Type": "application/rss+xml; charset=utf-8"}),
    "atom.xml": ("https://wire.example.com/atom.xml", {"Content-Type": "application/atom+xml"}),
    # an aggregator: each item names its outlet (<source>, dc:publisher)
    "rss20-aggregator.xml": ("https://news.google.example/rss/topics/caspian",
                             {"Content-Type": "application/rss+xml; charset=utf-8"}),
    "atom-source.xml": ("https://partners.example.com/atom.xml",
                        {"Content-Type": "application/atom+xml"}),
    "rss10.rdf": ("https://agrar.example.de/rss", {"Content-Type": "application/rdf+xml"}),
    "jsonfeed-1.1.json": ("https://transit.example.org/feed.json",
                          {"Content-Type": "application/feed+json"}),
    "undated.xml": ("https://agro.example.com.br/rss", {}),
    "malformed.xml": ("https://portwatch.example.com/rss", {"Content-Type": "text/xml"}),
    "no-guid-no-link.xml": ("https://bulletin.example.org/rss", {}),
    "billion-laughs.xml": ("https://laughs.example.org/rss", {}),
    "xxe.xml": ("https://xxe.example.org/rss", {}),
    "windows-1251.xml": ("https://zerno.example.kz/rss", {}),
    # the server claims windows-1251; the body is UTF-8 (and says so)
    "wrong-charset.xml": ("https://qed.example.kz/rss",
                          {"Content-Type": "text/xml; charset=windows-1251"}),
}
