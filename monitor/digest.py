"""What a desk is sent, as values: digests and alerts before any channel renders them.

This module owns the *content* of deliveries, and nothing else: it is pure
(no I/O, no clock: ``now`` is given), imports the standard library and
rapidfuzz only, and never loads Jinja2, SQLAlchemy, aiohttp or feedparser.

    StoredHit... --build_digest()--> Digest --+-- notify.email  (Jinja2 templates)
                                               +-- slack_messages() -> Block Kit JSON
                                               +-- webhook_document() -> JSON

A :class:`Digest` holds one :class:`Section` per topic (rule), each a list of
:class:`Story` values, newest first. A story is one or more hits clustered as
"the same story from several outlets" (:func:`same_story`, thresholds in
:data:`THRESHOLDS`): its lead hit is shown in full, the others as outlet links,
so every hit stays one click away.

Feed text is untrusted. Everything here that reaches an output is cleaned of
control characters, links are kept only when they are plain http(s) URLs
(:func:`safe_url`), and Slack text is escaped (:func:`slack_escape`) so that
feed text can never ping ``<!channel>`` or disguise a link.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rapidfuzz import fuzz

from monitor.models import Severity, StoredHit, isoformat_z
from monitor.text import fold_whitespace, strip_control, truncate

__all__ = [
    "KINDS",
    "SLACK_LIMITS",
    "THRESHOLDS",
    "Digest",
    "Mention",
    "Section",
    "Span",
    "Story",
    "build_digest",
    "cluster",
    "safe_url",
    "same_story",
    "slack_escape",
    "slack_messages",
    "webhook_document",
]

KINDS = ("digest", "alert")
SUBJECT_PREFIX = "[news-monitor]"

_TITLE_CHARS = 300  # a title longer than this is cut (a feed that puts its article there)
_SNIPPET_CHARS = 240
_SUBJECT_CHARS = 200  # headers longer than this fold badly in mail clients
_LABEL_CHARS = 32  # a rule title this short names its topic in the subject; else the id


# -- the values ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text; ``mark`` is True where a rule's term matched."""

    text: str
    mark: bool = False


@dataclass(frozen=True, slots=True)
class Mention:
    """Another outlet's version of a story: a link, so that hit stays one click away."""

    hit: StoredHit = field(repr=False)
    outlet: str
    title: str
    url: str | None  # http(s) only, else None
    host: str | None
    published: datetime
    when: str  # ``published`` in the desk's time zone, for people
    score: float


@dataclass(frozen=True, slots=True)
class Story:
    """One entry of a digest: a lead hit and the same story from other outlets."""

    lead: StoredHit
    title: tuple[Span, ...]  # the lead's title, matched terms marked
    snippet: tuple[Span, ...]  # a window of its summary around the matched terms
    url: str | None
    host: str | None  # the link's host (ASCII), shown so link text cannot disguise it
    outlet: str
    when: str
    score: float
    terms: tuple[str, ...]  # the matched words as they appear in the text
    more: tuple[Mention, ...] = ()

    @property
    def hits(self) -> int:
        return 1 + len(self.more)

    @property
    def hit_ids(self) -> tuple[int, ...]:
        return (self.lead.id, *(m.hit.id for m in self.more))

    @property
    def published(self) -> datetime:
        return max([self.lead.published, *(m.published for m in self.more)])

    @property
    def title_text(self) -> str:
        return "".join(s.text for s in self.title)


@dataclass(frozen=True, slots=True)
class Section:
    """One topic (rule) of a digest: its stories, newest first."""

    rule_id: str
    title: str
    label: str  # short name for subjects and headers
    severity: Severity | None
    count: int  # hits, not stories
    stories: tuple[Story, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one message to one desk says, whatever the channel.

    ``kind`` is ``digest`` or ``alert`` (short form); ``note`` is free text for
    an operator notice. ``generated_at`` is the delivery's creation time, so a
    retried message is rebuilt identically.
    """

    desk: str
    kind: str
    subject: str
    headline: str  # the subject without the "[news-monitor]" prefix
    generated_at: datetime
    when: str  # ``generated_at`` in the desk's time zone
    timezone: str
    sections: tuple[Section, ...] = ()
    note: str | None = None

    @property
    def total(self) -> int:
        return sum(s.count for s in self.sections)

    @property
    def stories(self) -> int:
        return sum(len(s.stories) for s in self.sections)

    @property
    def empty(self) -> bool:
        return not self.sections

    @property
    def counts(self) -> dict[str, int]:
        return {s.rule_id: s.count for s in self.sections}

    @property
    def hit_ids(self) -> tuple[int, ...]:
        return tuple(h for s in self.sections for st in s.stories for h in st.hit_ids)


# -- building -----------------------------------------------------------------


def build_digest(desk: str, hits: Iterable[StoredHit], rule_titles: Mapping[str, str],
                 now: datetime, *, kind: str = "digest", timezone: str = "UTC",
                 note: str | None = None) -> Digest:
    """Group hits by topic, cluster each topic's stories, and write the subject.

    Sections are ordered by severity, then by how many hits they hold; stories
    by their newest version, newest first. An item that two rules matched is
    shown under both topics.
    """
    if kind not in (*KINDS, "notice"):
        raise ValueError(f"unknown digest kind {kind!r}")
    tz = _zone(timezone)  # checked by the configuration; UTC should it vanish
    by_rule: dict[str, list[StoredHit]] = {}
    for h in hits:
        by_rule.setdefault(h.rule_id, []).append(h)
    sections = []
    for rule_id, rule_hits in by_rule.items():
        title = fold_whitespace(strip_control(rule_titles.get(rule_id) or rule_id))
        stories = tuple(sorted((_story(group, tz) for group in cluster(rule_hits)),
                               key=lambda s: (s.published, s.lead.id), reverse=True))
        sections.append(Section(
            rule_id=rule_id, title=title,
            label=title if len(title) <= _LABEL_CHARS else rule_id,
            severity=max(h.severity for h in rule_hits), count=len(rule_hits), stories=stories))
    sections.sort(key=lambda s: (-(s.severity or 0), -s.count, s.label))
    headline = _headline(desk, kind, sections, note)
    return Digest(desk=desk, kind=kind, subject=f"{SUBJECT_PREFIX} {headline}",
                  headline=headline, generated_at=now, when=_long_time(now, tz),
                  timezone=str(tz), sections=tuple(sections),
                  note=_clean(note) if note else None)


def _headline(desk: str, kind: str, sections: Sequence[Section], note: str | None) -> str:
    """``energy: 7 new (CPC disruption 5, BTC diversion 2)``, within a header's length."""
    if kind == "notice":
        return truncate(f"{desk}: {_clean(note or 'notice')}", _SUBJECT_CHARS)
    prefix = f"ALERT {desk}" if kind == "alert" else desk
    total = sum(s.count for s in sections)
    if not total:
        return f"{prefix}: nothing new"
    if kind == "alert" and total == 1:
        section = sections[0]
        return truncate(f"{prefix}: {section.label}: {section.stories[0].title_text}",
                        _SUBJECT_CHARS)
    head = f"{prefix}: {total} new"
    parts: list[str] = []
    for s in sections:
        part = f"{s.label} {s.count}"
        # Leave room for ", …)" so the list always closes.
        if len(head) + len(" (") + len(", ".join([*parts, part])) + len(", …)") > _SUBJECT_CHARS:
            parts.append("…")
            break
        parts.append(part)
    return f"{head} ({', '.join(parts)})"


def _story(group: Sequence[StoredHit], tz: ZoneInfo | Any) -> Story:
    # The strongest evidence leads; among equals, one with a usable link, then the
    # outlet that had it first.
    ordered = sorted(group, key=lambda h: (-h.score, safe_url(h.link) is None, h.published,
                                           h.id))
    lead = ordered[0]
    others = sorted(ordered[1:], key=lambda h: (h.published, h.id), reverse=True)
    url = safe_url(lead.link)
    return Story(
        lead=lead,
        title=highlight(lead.title, [(e.start, e.end) for e in lead.evidence
                                     if e.field == "title"], limit=_TITLE_CHARS),
        snippet=snippet(lead.summary, [(e.start, e.end) for e in lead.evidence
                                       if e.field == "summary"]),
        url=url, host=_host(url), outlet=_clean(lead.feed_name), when=_short_time(
            lead.published, tz),
        score=lead.score,
        terms=tuple(dict.fromkeys(_clean(e.text) for e in lead.evidence if _clean(e.text))),
        more=tuple(Mention(hit=h, outlet=_clean(h.feed_name),
                           title=truncate(_clean(h.title), _TITLE_CHARS),
                           url=(u := safe_url(h.link)), host=_host(u), published=h.published,
                           when=_short_time(h.published, tz), score=h.score) for h in others),
    )


def _clean(text: str) -> str:
    """Feed text for any output: no control characters, whitespace folded."""
    return fold_whitespace(strip_control(text))


def _zone(name: str) -> Any:
    try:
        return UTC if name in ("", "UTC") else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _short_time(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%d %b %H:%M").lstrip("0")


def _long_time(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%a %d %b %Y, %H:%M ") + str(tz)


# -- highlights and snippets ----------------------------------------------------


def _merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Valid spans only (evidence from another version of the text may not fit), merged."""
    ok = sorted((s, e) for s, e in spans if 0 <= s < e <= length)
    merged: list[tuple[int, int]] = []
    for s, e in ok:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _segments(text: str, spans: Sequence[tuple[int, int]], start: int, end: int
              ) -> list[Span]:
    out: list[Span] = []
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        if s > pos:
            out.append(Span(text[pos:s]))
        out.append(Span(text[s:e], True))
        pos = e
    if pos < end:
        out.append(Span(text[pos:end]))
    return out


def _tidy(segments: list[Span]) -> tuple[Span, ...]:
    """Clean each run after the offsets were used (cleaning first would shift them)."""
    out: list[Span] = []
    for seg in segments:
        t = re.sub(r"\s+", " ", strip_control(seg.text))
        if out and out[-1].text.endswith(" ") and t.startswith(" "):
            t = t[1:]
        if not t:
            continue
        if out and out[-1].mark == seg.mark:
            out[-1] = Span(out[-1].text + t, seg.mark)
        else:
            out.append(Span(t, seg.mark))
    if out:
        out[0] = Span(out[0].text.lstrip(), out[0].mark)
        out[-1] = Span(out[-1].text.rstrip(), out[-1].mark)
    return tuple(s for s in out if s.text)


def highlight(text: str, spans: Iterable[tuple[int, int]], *, limit: int | None = None
              ) -> tuple[Span, ...]:
    """``text`` as runs, the given character spans marked; cut at ``limit`` characters."""
    end = len(text)
    cut = limit is not None and end > limit
    if cut and limit is not None:
        end = max(text.rfind(" ", 0, limit), limit * 4 // 5)
    out = list(_tidy(_segments(text, _merge_spans(spans, len(text)), 0, end)))
    if cut:
        out.append(Span("…"))
    return tuple(out)


def snippet(text: str, spans: Iterable[tuple[int, int]], width: int = _SNIPPET_CHARS
            ) -> tuple[Span, ...]:
    """A window of about ``width`` characters of ``text``, around its first marked span."""
    merged = _merge_spans(spans, len(text))
    if len(text) <= width:
        return _tidy(_segments(text, merged, 0, len(text)))
    start = 0
    if merged:
        start = max(0, merged[0][0] - width // 3)
        if start:
            space = text.rfind(" ", 0, start)
            start = space + 1 if space > start - 30 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > end - 30 else end
    out = list(_tidy(_segments(text, merged, start, end)))
    if start > 0:
        out.insert(0, Span("… "))
    if end < len(text):
        out.append(Span(" …"))
    return tuple(out)


# -- links ----------------------------------------------------------------------

# RFC 3986 reserved and unreserved characters, and '%': everything else is encoded,
# so a link has no space, quote, '<', '>', '|' or backslash left to break out with.
_URL_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for an href or a Slack link, else None.

    Other schemes (``javascript:``, ``data:``...), URLs with credentials (a
    ``https://bank.example@evil.example/`` disguise) and monsters are dropped.
    The host is given in ASCII (punycode), and the rest percent-encoded.
    """
    if not url:
        return None
    url = strip_control(url).strip()
    if len(url) > 2048 or any(c.isspace() for c in url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        # Punycode shows a look-alike (a Cyrillic "е" in a Latin name) for what it is.
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if re.fullmatch(r"[0-9a-f:.]+", ascii_host) and ":" in ascii_host:
        ascii_host = f"[{ascii_host}]"  # IPv6
    elif not re.fullmatch(r"[a-z0-9_.-]+", ascii_host):
        return None  # no host has '<', '!', '|' or quotes in its name
    netloc = ascii_host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme.lower(), netloc, quote(parts.path, safe=_URL_SAFE),
                       quote(parts.query, safe=_URL_SAFE), quote(parts.fragment, safe=_URL_SAFE)))


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


# -- same story from several outlets -----------------------------------------------

#: How similar two hits must be to be shown as one story. Each row has paired
#: must-merge / must-not-merge cases in tests/test_digest.py (CLUSTER_CASES); a
#: change here updates its comment and a case there. The dev corpus (200 distinct
#: stories, three languages) must stay 200 entries whatever their dates.
THRESHOLDS: Mapping[str, float] = {
    # Never merge hits published further apart than this (hours): a follow-up a
    # week later is another story, however alike its headline.
    "window_hours": 48,
    # Two words are the same when folded they share this many leading
    # characters ("Kazakhstan"/"Kazakh", "exports"/"export")...
    "word_prefix": 5,
    # ...or are this similar (rapidfuzz ratio): typos, transliteration variants.
    "word_ratio": 85,
    # Same script: the shorter title's content words found in the other one.
    # 0.9 lets an outlet suffix or a reworded particle through, and stops
    # "CPC halts loadings" from meeting "CPC resumes loadings" (one word apart).
    "title_overlap": 0.9,
    # A title needs this many content words before overlap means anything.
    "title_min_words": 3,
    # Same script, rewritten headline over the same lede (syndication): summaries
    # this alike (token_sort_ratio, both at least summary_min_chars long), and
    # titles sharing at least this share of words.
    "summary_ratio": 88,
    "summary_min_chars": 80,
    "summary_title_overlap": 0.3,
    # Across scripts (a Russian and an English version) there are no common
    # words, only names and numbers: the titles must share this many...
    "cross_title_names": 2,
    # ...title and summary together this many...
    "cross_names": 3,
    # ...and make up this share of the smaller side's names and numbers.
    "cross_share": 0.6,
}

# Vetoes, whatever the scores: titles with different numbers (16.5% vs 16.75%,
# "81% of the vote" vs "87%") and titles that each name someone or something the
# other item never mentions (the UK vs the US sanctioning the same bank).

_STOPWORDS = frozenset([
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "from", "as",
    "and", "or", "but", "is", "are", "was", "were", "be", "been", "its", "it", "this",
    "that", "these", "those", "after", "before", "over", "under", "into", "onto", "via",
    "amid", "than", "then", "has", "have", "had", "will", "would", "could", "can", "may",
    "might", "not", "no", "new", "says", "said", "say", "report", "reports", "according",
    "в", "во", "на", "и", "по", "с", "со", "из", "за", "о", "об", "от", "до", "для", "к",
    "у", "не", "что", "как", "после", "при", "под", "над", "через", "а", "но", "это", "его",
    "её", "их", "также", "уже", "ещё", "еще"
])

_CYRILLIC = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya",
    # Kazakh and Ukrainian letters
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
    "і": "i", "ї": "i", "є": "e", "ґ": "g",
})

_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d.,])|\d+(?:[.,]\d+)*"
_TOKEN = re.compile(rf"({_NUMBER})|([^\W\d_]+(?:['’][^\W\d_]+)?)")


def _number(raw: str) -> str:
    s = re.sub(r"[ \u00a0\u202f]", "", raw)
    # "390,000" groups thousands; "1,2" (Russian) is a decimal comma.
    s = re.sub(r",(?=\d{3}(?:\D|$))", "", s).replace(",", ".")
    if "." in s:
        s = s.rstrip("0").rstrip(".") or "0"
    return "#" + (s.lstrip("0") or "0")


def _fold(word: str) -> str:
    """Lower-case, transliterated to Latin, spelling variants of names folded."""
    w = unicodedata.normalize("NFKD", word.lower().translate(_CYRILLIC))
    w = "".join(c for c in w if not unicodedata.combining(c))
    w = w.replace("kh", "h").replace("ph", "f").replace("w", "v").replace("q", "k")
    w = re.sub(r"c(?!h)", "k", w).replace("x", "ks").replace("y", "i")
    return re.sub(r"(.)\1", r"\1", w)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(as written, folded) for each word or number of ``text``; numbers fold to ``#n``."""
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1):
            out.append((m.group(1), _number(m.group(1))))
        else:
            raw = re.sub(r"['’][sS]$", "", m.group(2))  # Kazakhstan's -> Kazakhstan
            out.append((raw, _fold(raw)))
    return out


def _is_name(raw: str) -> bool:
    """Capitalised words and acronyms (a headline's first word too: usually a name)."""
    return len(raw) >= 2 and raw[0].isupper() and raw.lower() not in _STOPWORDS


def _acronyms(tokens: Iterable[tuple[str, str]]) -> frozenset[str]:
    return frozenset(raw for raw, _ in tokens if len(raw) >= 2 and raw.isupper())


@dataclass(frozen=True, slots=True)
class _Signature:
    """What clustering compares, computed once per hit."""

    script: str  # "latin" or "cyrillic": the title's majority
    title_words: tuple[str, ...]  # content words and numbers, folded
    title_numbers: frozenset[str]
    title_names: tuple[str, ...]  # capitalised words of the title (not short acronyms)
    title_acronyms: frozenset[str]  # as written: UK, US, CPC
    acronyms: frozenset[str]  # of title and summary
    all_words: frozenset[str]  # every folded word of title and summary
    names: tuple[str, ...]  # names and numbers (2+ digits) of title and summary, folded
    summary: str  # folded words of the summary
    title_keys: frozenset[str]  # 3-letter prefixes of title_words: a cheap first filter
    name_keys: frozenset[str]  # the same for title names and numbers
    link: str | None
    published: datetime


# Wire services' tags: "UPDATE 2-", "EXCLUSIVE-", "RPT-", "WRAPUP 1-".
_WIRE_TAG = re.compile(r"^(?:(?:UPDATE|WRAPUP|CORRECTED|REFILE|RPT|EXCLUSIVE|BREAKING|"
                       r"ANALYSIS|FACTBOX|INSIGHT)(?: \d+)?\s*[-:]\s*)+")


# An outlet's name after the headline: "... - Reuters", "... | Kursiv" (up to three
# capitalised words, so "Oil rises - analysts" keeps its last word).
_OUTLET_SUFFIX = re.compile(r"\s+[-|–—]\s+(?:[A-ZА-ЯЁ][\w.&'’]*\s?){1,3}$")


def _signature(hit: StoredHit) -> _Signature:
    title = _OUTLET_SUFFIX.sub("", _WIRE_TAG.sub("", _clean(hit.title)))
    letters = [c for c in title if c.isalpha()]
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    t = _tokens(title)
    s = _tokens(_clean(hit.summary))
    names = [f for raw, f in t + s
             if (len(f) > 2 if f.startswith("#") else _is_name(raw))]
    title_words = tuple(f for raw, f in t if f.startswith("#")
                        or (raw.lower() not in _STOPWORDS and len(f) >= 2))
    title_names = tuple(f for raw, f in t if not f.startswith("#") and _is_name(raw)
                        and not (raw.isupper() and len(raw) <= 4))
    title_numbers = frozenset(f for _, f in t if f.startswith("#"))
    return _Signature(
        script="cyrillic" if cyrillic * 2 > len(letters) else "latin",
        title_words=title_words,
        title_numbers=title_numbers,
        title_names=title_names,
        title_acronyms=_acronyms(t),
        acronyms=_acronyms(t + s),
        all_words=frozenset(f for _, f in t + s),
        names=tuple(dict.fromkeys(names)),
        summary=" ".join(f for _, f in s),
        title_keys=frozenset(w[:3] for w in title_words),
        name_keys=frozenset(w[:3] for w in (*title_names, *title_numbers)),
        link=safe_url(hit.link),
        published=hit.published,
    )


@functools.lru_cache(maxsize=65536)
def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("#") or b.startswith("#"):
        return False  # numbers only ever equal
    shorter = min(len(a), len(b))
    prefix = int(THRESHOLDS["word_prefix"])
    if shorter >= prefix:
        common = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            common += 1
        if common >= prefix and common >= 0.6 * shorter:
            return True
        return fuzz.ratio(a, b, score_cutoff=THRESHOLDS["word_ratio"]) > 0
    return False


def _matched(a: Sequence[str], b: Sequence[str]) -> int:
    """How many words of ``a`` have a partner in ``b`` (each partner used once)."""
    free = list(b)
    fuzzy = []
    n = 0
    for w in a:  # exact partners first: cheap, and they must not be taken by a fuzzy one
        if w in free:
            free.remove(w)
            n += 1
        else:
            fuzzy.append(w)
    for w in fuzzy:
        for i, v in enumerate(free):
            if _same_word(w, v):
                n += 1
                del free[i]
                break
    return n


def _unexplained_name(a: _Signature, b: _Signature) -> bool:
    """Does ``a``'s title name someone or something ``b`` never mentions?"""
    # Short acronyms are compared as written: "US" must not meet the word "us".
    if any(len(x) <= 4 and x not in b.acronyms for x in a.title_acronyms):
        return True
    return any(not any(_same_word(name, w) for w in b.all_words) for name in a.title_names)


def _overlap(a: Sequence[str], b: Sequence[str], *, count: bool = False) -> float:
    """The share of the shorter list's words found in the other (or their number)."""
    if len(a) > len(b):
        a, b = b, a
    if count:
        return _matched(a, b)
    return _matched(a, b) / len(a) if a else 0.0


def _same(a: _Signature, b: _Signature) -> bool:
    # Cheapest tests first: a digest may compare a few hundred hits pairwise.
    if a.link is not None and a.link == b.link:
        return True  # one article reached through two feeds
    if abs(a.published - b.published) > timedelta(hours=THRESHOLDS["window_hours"]):
        return False
    if a.title_numbers and b.title_numbers and a.title_numbers != b.title_numbers:
        return False
    if a.script == b.script:
        # Words that match share their first three letters, nearly always: an upper
        # bound on the overlap that costs one set intersection.
        shorter = min(len(a.title_words), len(b.title_words))
        if len(a.title_keys & b.title_keys) < THRESHOLDS["summary_title_overlap"] * shorter:
            return False
        overlap = _overlap(a.title_words, b.title_words)
        if overlap < THRESHOLDS["summary_title_overlap"]:
            return False
        if _unexplained_name(a, b) and _unexplained_name(b, a):
            return False
        if shorter >= THRESHOLDS["title_min_words"] and overlap >= THRESHOLDS["title_overlap"]:
            return True
        min_chars = THRESHOLDS["summary_min_chars"]
        return (len(a.summary) >= min_chars and len(b.summary) >= min_chars
                and fuzz.token_sort_ratio(a.summary, b.summary) >= THRESHOLDS["summary_ratio"])
    # Across scripts: the titles must share names (country names alone are too
    # common in one topic), then title and summary together.
    if len(a.name_keys & b.name_keys) < THRESHOLDS["cross_title_names"]:
        return False
    if _overlap(a.title_names + tuple(a.title_numbers), b.title_names + tuple(b.title_numbers),
                count=True) < THRESHOLDS["cross_title_names"]:
        return False
    small, big = (a.names, b.names) if len(a.names) <= len(b.names) else (b.names, a.names)
    shared = _matched(small, big)
    return (shared >= THRESHOLDS["cross_names"]
            and shared / len(small) >= THRESHOLDS["cross_share"])


def same_story(a: StoredHit, b: StoredHit) -> bool:
    """Are these two hits the same story (from two outlets, or two languages)?"""
    return _same(_signature(a), _signature(b))


def cluster(hits: Sequence[StoredHit]) -> list[list[StoredHit]]:
    """Group hits that tell the same story; newest first, each hit in one group.

    A hit joins the first group holding a hit it matches (:func:`same_story`)
    and whose title numbers do not contradict any member, so two different
    stories cannot be chained together through a vague third.
    """
    ordered = sorted(hits, key=lambda h: (h.published, h.id), reverse=True)
    groups: list[list[tuple[StoredHit, _Signature]]] = []
    for h in ordered:
        sig = _signature(h)
        for group in groups:
            if any(s.title_numbers and sig.title_numbers and s.title_numbers
                   != sig.title_numbers for _, s in group):
                continue
            if any(_same(sig, s) for _, s in group):
                group.append((h, sig))
                break
        else:
            groups.append([(h, sig)])
    return [[h for h, _ in g] for g in groups]


# -- Slack ------------------------------------------------------------------------

#: Slack's limits on one message: 50 blocks, 3,000 characters in a section's
#: text, 150 in a header; and, undocumented but observed (msg_blocks_too_long),
#: about 13,000 characters of block text in all. Longer digests become several
#: messages, sent in order.
SLACK_LIMITS: Mapping[str, int] = {"blocks": 50, "text": 3000, "header": 150,
                                   "message": 12000}

_SLACK_MENTION = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)


def slack_escape(text: str) -> str:
    """Feed text for Slack mrkdwn: ``&``, ``<``, ``>`` escaped, so it can neither
    mention (``<!channel>``, ``<@U123>``) nor link (``<url|text>``); a bare
    ``@channel`` gets a word joiner, in case a workspace parses names."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_MENTION.sub("@\u2060", text)


def _slack_link(url: str | None, text: str) -> str:
    label = slack_escape(text) or "link"
    if not url:
        return label
    # safe_url left no '<', '>', '|' or space in the URL; '&' is escaped as Slack asks.
    return f"<{url.replace('&', '&amp;')}|{label}>"


def _slack_spans(spans: Sequence[Span]) -> str:
    out = []
    for s in spans:
        text = slack_escape(s.text.replace("*", "∗")) if s.mark else slack_escape(s.text)
        out.append(f"*{text}*" if s.mark and text.strip() else text)
    return "".join(out)


def _story_lines(story: Story, section: Section, kind: str, limit: int) -> list[str]:
    """A story as mrkdwn lines, none longer than ``limit``."""
    title = truncate(_slack_spans(story.title) if not story.url else
                     slack_escape(story.title_text), 600)
    where = slack_escape(story.outlet) + (f" ({story.host})" if story.host else "")
    head = f"• {_slack_link(story.url, title) if story.url else title} — {where}, {story.when}"
    if kind == "alert":
        head = f"• *{slack_escape(section.label)}*: " + head[2:]
        if story.terms:
            head += " · terms: " + slack_escape(", ".join(story.terms))
    else:
        head += f" · score {story.score:.0f}"
    lines = [truncate(head, limit)]
    if kind != "alert" and story.snippet:
        lines.append(truncate("      " + _slack_spans(story.snippet), limit))
    if story.more:
        line = f"      +{len(story.more)} more: "
        for i, m in enumerate(story.more):
            link = _slack_link(m.url, m.outlet) + ("" if i == len(story.more) - 1 else ", ")
            if len(line) + len(link) > limit:
                lines.append(line.rstrip(", "))
                line = "      "
            line += link
        lines.append(line)
    return lines


def slack_messages(digest: Digest, *, limits: Mapping[str, int] = SLACK_LIMITS
                   ) -> list[dict[str, Any]]:
    """The digest as Slack incoming-webhook payloads (Block Kit), in sending order.

    Message one opens with a header and the counts per topic; then a section
    block per topic, with as many blocks as its stories need. A message is cut
    before it would pass a limit; later messages open with "(part n of N)".
    """
    max_text, max_blocks, max_chars = limits["text"], limits["blocks"], limits["message"]
    fallback = slack_escape(digest.headline)
    # plain_text is not parsed for mentions, but no '<' at all is simpler to trust.
    header = _SLACK_MENTION.sub("@\u2060", digest.headline.replace("<", "‹").replace(">", "›"))
    intro: list[dict[str, Any]] = [{
        "type": "header",
        "text": {"type": "plain_text", "emoji": False,
                 "text": truncate(header, limits["header"])},
    }]
    counts = " · ".join(f"{slack_escape(s.label)} {s.count}" for s in digest.sections)
    context = f"{slack_escape(digest.desk)} · {digest.when}" + (f" · {counts}" if counts else "")
    intro.append({"type": "context",
                  "elements": [{"type": "mrkdwn", "text": truncate(context, max_text)}]})
    if digest.note:
        intro.append(_section(truncate(slack_escape(digest.note), max_text)))
    elif digest.empty:
        intro.append(_section("Nothing new matched since the last digest."))

    body: list[dict[str, Any]] = []
    for section in digest.sections:
        if digest.kind != "alert":
            if body:
                body.append({"type": "divider"})
            sev = f" · {section.severity}" if section.severity else ""
            body.append(_section(truncate(f"*{slack_escape(section.title)}*{sev} · "
                                          f"{section.count} new", max_text)))
        text = ""
        for story in section.stories:
            for line in _story_lines(story, section, digest.kind, max_text):
                if text and len(text) + 1 + len(line) > max_text:
                    body.append(_section(text))
                    text = ""
                text = f"{text}\n{line}" if text else line
        if text:
            body.append(_section(text))

    messages: list[list[dict[str, Any]]] = [list(intro)]
    size = sum(_block_chars(b) for b in intro)
    for block in body:
        chars = _block_chars(block)
        # One block is kept free in every message for the "(part n of N)" line.
        if len(messages[-1]) + 2 > max_blocks or size + chars > max_chars - 100:
            messages.append([])
            size = 0
        if not messages[-1] and block["type"] == "divider":
            continue
        messages[-1].append(block)
        size += chars
    total = len(messages)
    out = []
    for n, blocks in enumerate(messages, start=1):
        if n > 1:
            blocks.insert(0, {"type": "context", "elements": [{
                "type": "mrkdwn", "text": f"{fallback} (part {n} of {total})"[:max_text]}]})
        out.append({"text": truncate(fallback + (f" (part {n} of {total})" if total > 1
                                                 else ""), max_text),
                    "blocks": blocks, "unfurl_links": False, "unfurl_media": False})
    return out


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _block_chars(block: Mapping[str, Any]) -> int:
    if "text" in block:
        return len(block["text"]["text"])
    return sum(len(e.get("text", "")) for e in block.get("elements", ()))


# -- the generic webhook -------------------------------------------------------------


def webhook_document(digest: Digest, *, delivery_id: int | None = None) -> dict[str, Any]:
    """The digest as one JSON document for any other system (see docs/delivery.md).

    ``delivery`` identifies the message: a resend after a crash carries the
    same id, so a receiver can drop the duplicate.
    """
    return {
        "version": 1,
        "delivery": delivery_id,
        "kind": digest.kind,
        "desk": digest.desk,
        "subject": digest.subject,
        "generated_at": isoformat_z(digest.generated_at),
        "total": digest.total,
        "counts": digest.counts,
        "note": digest.note,
        "sections": [{
            "rule": s.rule_id,
            "title": s.title,
            "severity": str(s.severity) if s.severity else None,
            "count": s.count,
            "stories": [{
                "title": st.title_text,
                "link": st.url,
                "outlet": st.outlet,
                "published": isoformat_z(st.lead.published),
                "score": round(st.score, 1),
                "terms": list(st.terms),
                "hits": [_hit_doc(st.lead), *(_hit_doc(m.hit) for m in st.more)],
            } for st in s.stories],
        } for s in digest.sections],
    }


def _hit_doc(h: StoredHit) -> dict[str, Any]:
    return {"id": h.id, "rule": h.rule_id, "severity": str(h.severity), "score": round(h.score, 1),
            "title": truncate(_clean(h.title), _TITLE_CHARS), "link": safe_url(h.link),
            "outlet": _clean(h.feed_name), "feed": h.feed_url, "guid": h.guid,
            "published": isoformat_z(h.published), "matched_at": isoformat_z(h.matched_at),
            "evidence": [e.to_dict() for e in h.evidence]}
