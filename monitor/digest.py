"""What a desk is sent, as values: digests and alerts before any channel renders them.

This module owns the *content* of deliveries, and nothing else: it is pure
(no I/O, no clock: ``now`` is given), imports the standard library and,
through :mod:`monitor.stories`, rapidfuzz; never Jinja2, SQLAlchemy, aiohttp
or feedparser.

    StoredHit... --build_digest()--> Digest --> each channel renders it
                                                (monitor.channels: its own module)

A :class:`Digest` holds one :class:`Section` per topic (rule), each a list of
:class:`Story` values, newest first. A story is one or more hits clustered as
"the same story from several outlets" (:func:`monitor.stories.cluster`): its
lead hit is shown in full, the others as outlet links, so every hit stays one
click away.

Feed text is untrusted: everything here that reaches an output is cleaned and
its links checked (:mod:`monitor.highlight`); each channel escapes for its
own format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.highlight import (
    TITLE_CHARS,
    Span,
    clean,
    content_snippet,
    highlight,
    host,
    safe_url,
    snippet,
)
from monitor.models import Severity, StoredHit
from monitor.stories import cluster
from monitor.text import truncate

__all__ = [
    "KINDS",
    "Digest",
    "Mention",
    "Section",
    "Span",
    "Story",
    "build_digest",
]

KINDS = ("digest", "alert")
SUBJECT_PREFIX = "[news-monitor]"

_SUBJECT_CHARS = 200  # headers longer than this fold badly in mail clients
_LABEL_CHARS = 32  # a rule title this short names its topic in the subject; else the id


# -- the values ---------------------------------------------------------------


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
        title = clean(rule_titles.get(rule_id) or rule_id)
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
                  note=clean(note) if note else None)


def _headline(desk: str, kind: str, sections: Sequence[Section], note: str | None) -> str:
    """``energy: 7 new (CPC disruption 5, BTC diversion 2)``, within a header's length."""
    if kind == "notice":
        return truncate(f"{desk}: {clean(note or 'notice')}", _SUBJECT_CHARS)
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


def _snippet(hit: StoredHit) -> tuple[Span, ...]:
    """The summary around its evidence; where only the article's text (content)
    had evidence, the sentence it was found in, never the article."""
    spans = [(e.start, e.end) for e in hit.evidence if e.field == "summary"]
    found = next((e for e in hit.evidence if e.field == "content" and e.context), None)
    if spans or found is None or found.context is None:
        return snippet(hit.summary, spans)
    return content_snippet(found.context, [(e.start, e.end) for e in hit.evidence
                                           if e.field == "content" and e.context == found.context],
                           found.context_start)


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
                                     if e.field == "title"], limit=TITLE_CHARS),
        snippet=_snippet(lead),
        url=url, host=host(url), outlet=clean(lead.shown_outlet), when=_short_time(
            lead.published, tz),
        score=lead.score,
        terms=tuple(dict.fromkeys(clean(e.text) for e in lead.evidence if clean(e.text))),
        more=tuple(Mention(hit=h, outlet=clean(h.shown_outlet),
                           title=truncate(clean(h.title), TITLE_CHARS),
                           url=(u := safe_url(h.link)), host=host(u), published=h.published,
                           when=_short_time(h.published, tz), score=h.score) for h in others),
    )


def _zone(name: str) -> Any:
    try:
        return UTC if name in ("", "UTC") else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _short_time(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%d %b %H:%M").lstrip("0")


def _long_time(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%a %d %b %Y, %H:%M ") + str(tz)
