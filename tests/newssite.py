"""Article pages as a news site serves them: the story inside heavy site chrome.

The chrome is what an extractor must leave out, and each piece of it would
make the shipped rules hit if it were read as the article: a crypto ticker
naming BTC beside a pipeline headline, a "most read" list with a CPC
disruption headline of another day and the Communist Party of China (CPC),
a cookie banner, a newsletter box, a footer with the outlet's other desks.
Used by tests/test_full_text.py and bench/bench_full_text.py.
"""

from __future__ import annotations

import html

TICKER = ("BTC $97,412.50 ▲2.1% · ETH $3,411.02 ▼0.4% · Brent $81.20 ▲0.6% · "
          "USD/KZT 512.30 · BTC pipeline flows: halted? Read our live blog")
MOST_READ = (
    "Storm halts Caspian Pipeline Consortium loadings at Novorossiysk terminal",
    "CPC of China Central Committee opens plenum as Beijing halts pork imports",
    "Kazakhstan bans wheat exports to EAEU partners until spring",
    "Tanker carrying sanctioned Russian oil transits the Bosphorus",
    "Baku-Tbilisi-Ceyhan pipeline shut after explosion, BTC operator says",
)


def chrome_page(headline: str, paragraphs: list[str], *, lang: str = "en",
                outlet: str = "The Daily Steppe", charset: str | None = "utf-8") -> str:
    """The HTML of an article page: ``headline`` and ``paragraphs`` in an
    ``<article>``, everything else site chrome."""
    e = html.escape
    body = "\n".join(f"<p>{e(p)}</p>" for p in paragraphs)
    most_read = "\n".join(f'<li><a href="/story/{i}">{e(t)}</a></li>'
                          for i, t in enumerate(MOST_READ))
    meta = f'<meta charset="{charset}">' if charset else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head>{meta}<title>{e(headline)} | {e(outlet)}</title>
<meta name="viewport" content="width=device-width">
<script>window.dataLayer=[];function gtag(){{dataLayer.push(arguments)}}</script>
<style>.ticker{{white-space:nowrap}}</style></head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience and
for advertising. By continuing to browse you agree to our use of cookies.</p>
<button>Accept all</button><button>Settings</button></div>
<header class="site-header"><a href="/" class="logo">{e(outlet)}</a>
<nav class="main-nav"><ul><li><a href="/world">World</a></li>
<li><a href="/business">Business</a></li>
<li><a href="/energy">Energy</a></li><li><a href="/markets">Markets</a></li>
<li><a href="/opinion">Opinion</a></li></ul></nav>
<div class="ticker" aria-label="Markets">{e(TICKER)}</div></header>
<main>
<nav class="breadcrumbs"><a href="/">Home</a> › <a href="/energy">Energy</a></nav>
<article class="story">
<h1>{e(headline)}</h1>
<div class="byline">By Staff Reporter · 3 min read</div>
<div class="story-body">
{body}
</div>
<div class="share">Share: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Telegram</a></div>
</article>
<aside class="sidebar">
<section class="most-read"><h2>Most read</h2><ol>
{most_read}
</ol></section>
<section class="newsletter"><h2>Morning briefing</h2><p>Oil, grain and pipelines of the Caspian
region in your inbox every morning: CPC, BTC, Tengiz and Kashagan.</p><form><input name="email">
<button>Subscribe</button></form></section>
</aside>
</main>
<footer class="site-footer"><ul><li><a href="/about">About us</a></li>
<li><a href="/ads">Advertise</a></li>
<li><a href="/privacy">Privacy policy</a></li></ul>
<p>© 2026 {e(outlet)}. Reproduction of materials of the Caspian Pipeline Consortium desk only
with a link. Oil terminal halted? Tips: tips@example.org</p></footer>
<script src="/static/app.js"></script>
</body></html>"""


def js_only_page(headline: str) -> str:
    """A single-page app's shell: no text until its JavaScript runs."""
    return (f"<!DOCTYPE html><html><head><title>{html.escape(headline)}</title>"
            '<script src="/static/bundle.js"></script></head>'
            '<body><div id="root"></div><noscript>Enable JavaScript.</noscript>'
            "<script>window.__INITIAL_STATE__={};</script></body></html>")


def headline_feed(entries: list[tuple[str, str, str]], *, title: str = "Headlines") -> bytes:
    """An RSS feed of (guid, title, link) entries without any description: what
    many outlets' feeds carry."""
    e = html.escape
    items = "".join(f"<item><title>{e(t)}</title><link>{e(link)}</link>"
                    f"<guid isPermaLink=\"false\">{e(g)}</guid></item>"
                    for g, t, link in entries)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{e(title)}</title><link>http://example.org/</link>"
            f"<description>{e(title)}</description>{items}</channel></rss>").encode()
