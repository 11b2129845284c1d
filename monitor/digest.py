"""What a desk is sent, as values: digests and alerts before any channel renders them.

This module owns the *content* of deliveries, and nothing else: it is pure
(no I/O, no clock: ``now`` is given), imports the standard library and,
through :mod:`monitor.stories`, rapidfuzz; never Jinja2, SQLAlchemy, aiohttp
or feedparser.

    StoredHit... --build_digest()--> Digest --> each channel renders it
                                                (monitor.channels: its own module)

A :class:`Digest` holds one :class:`Section` per topic (rule), each a list of
:class:`Story` values, strongest first. A story is every hit of one stored
story (``StoredHit.story``, chosen when the hits were stored by
:func:`monitor.stories.place`; hits stored without one are grouped by
:func:`monitor.stories.cluster`): its lead item is shown in full, every other
outlet's item as a link, so every report stays one click away. A story is
listed once, under its gravest rule, naming the desk's other rules it hit.

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
    "story_entry",
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
    lang: str | None = None
    lead_lang: str | None = None  # the story's lead's language

    @property
    def label(self) -> str:
        """``TASS (ru)``: the outlet, its language marked where the lead's differs.
        Languages compare by their first part: a guessed ``en`` (monitor.language)
        is the language of a declared ``en-us``."""
        lead = (self.lead_lang or "").split("-", 1)[0]
        return self.outlet + (f" ({self.lang})" if self.lang and self.lang.split("-", 1)[0]
                              != lead else "")


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
    more: tuple[Mention, ...] = ()  # other items of the story, one per link
    also: tuple[str, ...] = ()  # the desk's other rules this story hit (their labels)
    members: tuple[StoredHit, ...] = field(default=(), repr=False)  # every hit it stands for
    page: str | None = None  # the story's page in the web view, with [web] base_url

    @property
    def hits(self) -> int:
        return 1 + len(self.more)

    @property
    def hit_ids(self) -> tuple[int, ...]:
        if self.members:
            return tuple(h.id for h in self.members)
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
    count: int  # stories
    stories: tuple[Story, ...]

    @property
    def new(self) -> str:
        """``2 new stories``, ``1 new story``."""
        return f"{self.count} new {'story' if self.count == 1 else 'stories'}"


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
        """Stories, as the subject counts them."""
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
                 note: str | None = None, base_url: str | None = None) -> Digest:
    """Group hits into stories, each story under its gravest rule, and write the subject.

    With ``base_url`` (the web view's public address) each story links to its
    lead's page there.

    Sections are ordered by severity, then by how many stories and reports they hold;
    stories by their score, strongest first, then newest first.
    """
    if kind not in (*KINDS, "notice"):
        raise ValueError(f"unknown digest kind {kind!r}")
    tz = _zone(timezone)  # checked by the configuration; UTC should it vanish
    by_rule: dict[str, list[Story]] = {}
    for group in _story_groups(list(hits)):
        story = _entry(group, rule_titles, tz, base_url)
        by_rule.setdefault(story.lead.rule_id, []).append(story)
    sections = []
    for rule_id, stories in by_rule.items():
        title = clean(rule_titles.get(rule_id) or rule_id)
        stories.sort(key=lambda s: (-s.score, -s.published.timestamp(), -s.lead.id))
        sections.append(Section(
            rule_id=rule_id, title=title, label=_label(rule_titles, rule_id),
            severity=max(s.lead.severity for s in stories), count=len(stories),
            stories=tuple(stories)))
    # Gravest first, then most stories, then most reports (coverage), then by name.
    sections.sort(key=lambda s: (-(s.severity or 0), -s.count,
                                 -sum(len(st.hit_ids) for st in s.stories), s.label))
    headline = _headline(desk, kind, sections, note)
    return Digest(desk=desk, kind=kind, subject=f"{SUBJECT_PREFIX} {headline}",
                  headline=headline, generated_at=now, when=_long_time(now, tz),
                  timezone=str(tz), sections=tuple(sections),
                  note=clean(note) if note else None)


def story_entry(group: Sequence[StoredHit], rule_titles: Mapping[str, str], *,
                timezone: str = "UTC", base_url: str | None = None) -> Story:
    """The hits of one story as a digest lists it (the web view's list too): under
    its gravest rule, its lead the strongest report, the others linked once each,
    the story's other rules named (``also``)."""
    return _entry(group, rule_titles, _zone(timezone), base_url)


def _entry(group: Sequence[StoredHit], rule_titles: Mapping[str, str], tz: ZoneInfo | Any,
           base_url: str | None) -> Story:
    rule_id = _gravest(group)
    also = tuple(_label(rule_titles, r) for r in sorted({h.rule_id for h in group} - {rule_id}))
    return _story(group, rule_id, also, tz, base_url)


def _label(rule_titles: Mapping[str, str], rule_id: str) -> str:
    """A rule's title, or its id where the title is too long for a subject line."""
    t = clean(rule_titles.get(rule_id) or rule_id)
    return t if len(t) <= _LABEL_CHARS else rule_id


def _story_groups(hits: list[StoredHit]) -> list[list[StoredHit]]:
    """The hits of each story: by stored story; hits stored without one, clustered."""
    groups: dict[int, list[StoredHit]] = {}
    loose: list[StoredHit] = []
    for h in hits:
        if h.story is None:
            loose.append(h)
        else:
            groups.setdefault(h.story, []).append(h)
    out = list(groups.values())
    # An item that hit several rules is one report: cluster items, each among the
    # items of its gravest rule.
    by_item: dict[int, list[StoredHit]] = {}
    for h in loose:
        by_item.setdefault(h.item_id, []).append(h)
    by_rule: dict[str, list[list[StoredHit]]] = {}
    for item_hits in by_item.values():
        by_rule.setdefault(_gravest(item_hits), []).append(item_hits)
    for rule_items in by_rule.values():
        firsts = {g[0].id: g for g in rule_items}
        for group in cluster([g[0] for g in rule_items]):
            out.append([h for first in group for h in firsts[first.id]])
    return out


def _gravest(group: Sequence[StoredHit]) -> str:
    """The rule a story is listed under: the gravest, then the strongest evidence."""
    return min(group, key=lambda h: (-h.severity, -h.score, h.rule_id)).rule_id


def _headline(desk: str, kind: str, sections: Sequence[Section], note: str | None) -> str:
    """``energy: 3 new stories (CPC disruption 2, BTC diversion 1)``, within a header's
    length."""
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
    head = f"{prefix}: {total} new {'story' if total == 1 else 'stories'}"
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


def _story(group: Sequence[StoredHit], rule_id: str, also: tuple[str, ...],
           tz: ZoneInfo | Any, base_url: str | None = None) -> Story:
    # One report per item, shown with its hit of the story's rule where it has one.
    reports: dict[int, StoredHit] = {}
    for h in sorted(group, key=lambda h: (h.rule_id != rule_id, -h.score, h.id)):
        reports.setdefault(h.item_id, h)
    # The strongest evidence leads; among equals, one with a usable link, then the
    # outlet that had it first.
    ordered = sorted(reports.values(), key=lambda h: (
        h.rule_id != rule_id, -h.score, safe_url(h.link) is None, h.published, h.id))
    lead = ordered[0]
    url = safe_url(lead.link)
    # Every other report once per link: one article reached through several feeds
    # is one mention.
    seen = {url} if url else set()
    others = []
    for h in sorted(ordered[1:], key=lambda h: (h.published, h.id), reverse=True):
        u = safe_url(h.link)
        if u is not None and u in seen:
            continue
        if u is not None:
            seen.add(u)
        others.append(h)
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
                           when=_short_time(h.published, tz), score=h.score, lang=h.lang,
                           lead_lang=lead.lang)
                   for h in others),
        also=also,
        members=tuple(sorted(group, key=lambda h: h.id)),
        page=f"{base_url.rstrip('/')}/hits/{lead.id}" if base_url else None,
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
