"""Values passed between the stages: frozen dataclasses, UTC-aware datetimes.

Nothing here does I/O or imports a third-party library.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Severity(enum.IntEnum):
    """How grave a rule's hits are; ordered so that ``>=`` compares."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, word: str) -> Severity:
        return cls[word.strip().upper()]

    def __str__(self) -> str:
        return self.name.lower()


# -- fetch --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What the fetcher needs to know about one feed: where, and its validators.
    ``kind`` (``feed`` or ``telegram``) is not the fetcher's: it is what the
    body is parsed as, where the fetch child parses it."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    kind: str = "feed"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one fetch.

    ``status`` is the final HTTP status when a response came (200 for a local
    file), else None and ``error_kind`` says why: ``timeout``, ``dns``, ``tls``,
    ``connection``, ``too_large``, ``redirect_loop``, ``file`` ...
    A 4xx/5xx response has ``error_kind == "http"``.
    """

    url: str
    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error_kind: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def last_status(self) -> int | str | None:
        """What ``status`` shows: the HTTP status, else the error word."""
        return self.status if self.status is not None else self.error_kind


# -- parse --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One feed entry reduced to what matching and digests need.

    ``guid`` is the entry's stable identity (its id, else its link, else a
    hash of its title, summary and content). ``published`` is None when the
    feed gives no readable date: the store then uses the time first seen.
    ``fingerprint`` hashes the normalised title and summary, so an entry
    republished under a new id is recognised. ``outlet`` is who reported the
    entry when the feed names someone (an aggregator's ``<source>``), else None.
    ``content`` is the main text of the article its link leads to, when the
    feed has ``full_text`` and the page could be fetched and read, else "".
    ``article_link``: where the article is when the link is not it (a Telegram
    post's first link out); full_text fetches it. Not stored.
    """

    feed_url: str
    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime | None
    lang: str | None
    fingerprint: str
    outlet: str | None = None
    content: str = ""
    article_link: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What was recovered from one fetched document."""

    url: str
    title: str | None
    link: str | None
    language: str | None
    items: tuple[Item, ...]
    is_feed: bool  # False when the document holds no feed at all (an HTML page...)
    problem: str | None = None  # feedparser's bozo exception, or why it is no feed


# -- match --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """Which term matched which span of which field, and how well (0-100).

    Evidence in ``content`` (an article's text, too long to show) carries the
    sentence it was found in: ``context``, which starts at ``context_start`` of
    the field, so that a digest shows that sentence rather than the article.
    """

    field: str  # "title", "summary" or "content"
    term: str
    text: str
    start: int
    end: int
    score: float
    context: str | None = None
    context_start: int = 0

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "term": self.term, "text": self.text,
                                  "start": self.start, "end": self.end,
                                  "score": round(self.score, 1)}
        if self.context is not None:
            out["context"] = self.context
            out["context_start"] = self.context_start
        return out

    def to_json(self) -> str:
        """``json.dumps(self.to_dict(), ensure_ascii=False)``, written out (the two stay
        in step): ``match`` writes ~10 a hit, and the encoder's generic walk of a dict
        cost more than matching."""
        # Imported here: the channels import this module, and must not pay for json.
        from json.encoder import encode_basestring as _json_string  # ensure_ascii=False's

        out = (f'{{"field": "{self.field}", "term": {_json_string(self.term)}, '
               f'"text": {_json_string(self.text)}, "start": {self.start}, "end": {self.end}, '
               f'"score": {round(self.score, 1)!r}')
        if self.context is not None:
            out += (f', "context": {_json_string(self.context)}, '
                    f'"context_start": {self.context_start}')
        return out + "}"


@dataclass(frozen=True, slots=True)
class Match:
    """One rule's verdict on one item: a hit with its score and evidence."""

    rule_id: str
    score: float
    evidence: tuple[Evidence, ...]


# -- store --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed's fetch state as the store keeps it between polls."""

    url: str
    name: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_polled: datetime | None = None
    last_ok: datetime | None = None
    last_status: str | None = None  # "200", "304", or an error word ("timeout"...)
    error: str | None = None
    failures: int = 0
    next_poll: datetime | None = None
    disabled: str | None = None  # why it is no longer polled (410 Gone), else None
    last_new_item: datetime | None = None
    newest_entry: datetime | None = None
    flag: str | None = None  # a health warning already reported once
    title: str | None = None
    # full_text: article pages that could not be fetched or read, and the last reason
    article_failures: int = 0
    article_error: str | None = None


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item not yet stored, and the rule verdicts to store with it."""

    item: Item
    matches: tuple[Match, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """An item as story placement compares it: a stored one carries its ``story``."""

    item_id: int
    title: str
    summary: str
    link: str | None
    published: datetime
    lang: str | None = None
    rules: tuple[str, ...] = ()
    story: int | None = None


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A stored hit joined with its item and feed: what digests and `hits` show."""

    id: int
    rule_id: str
    rule_version: str
    severity: Severity
    score: float
    evidence: tuple[Evidence, ...]
    matched_at: datetime
    item_id: int
    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime
    lang: str | None
    feed_url: str
    feed_name: str  # the configured name, else the feed's own title, else its URL
    outlet: str | None = None  # the item's own outlet, where the feed names one
    feedback: str | None = None  # the latest verdict on it (relevant, noise), if any
    story: int | None = None  # the story it tells (the id of its first item)

    @property
    def story_key(self) -> int:
        """The story, or the item itself for a hit stored without one."""
        return self.story if self.story is not None else self.item_id

    @property
    def shown_outlet(self) -> str:
        """Who reported it: the item's own outlet, else the feed's name."""
        return self.outlet or self.feed_name


def isoformat_z(when: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second, as every output shows time."""
    if when is None:
        return None
    from datetime import UTC

    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one desk on one channel, and how its sending went."""

    id: int
    desk: str
    channel: str  # a registered channel name (monitor.channels.SPECS)
    kind: str  # digest, alert, notice
    state: str  # pending, sent, failed (permanently)
    created_at: datetime
    attempts: int = 0
    next_attempt: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    payload: Mapping[str, object] | None = None  # a notice's text; digests carry hits


@dataclass(frozen=True, slots=True)
class Silence:
    """A rule muted (for one desk, or all) until a time: hits are stored, not sent."""

    id: int
    rule_id: str
    desk: str | None
    created_at: datetime
    until: datetime
    reason: str
