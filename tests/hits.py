"""Stored hits for the digest and channel tests: ``hit()`` makes one, each with
a new id, matched at ``T0``; ``TITLES`` names their rules; ``a_digest()`` and
``big_digest()`` are the digests the channel tests render."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from monitor import digest as D
from monitor.models import Evidence, Severity, StoredHit

T0 = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
TITLES = {"cpc-disruption": "CPC disruption", "btc-diversion": "BTC diversion"}
_ids = itertools.count(1)


def hit(title: str, summary: str = "", *, rule: str = "cpc-disruption", feed: str = "Reuters",
        link: str | None = "auto", hours: float = 0.0, score: float = 90.0,
        severity: Severity = Severity.HIGH, evidence: tuple[Evidence, ...] = ()) -> StoredHit:
    n = next(_ids)
    return StoredHit(
        id=n, rule_id=rule, rule_version="v1", severity=severity, score=score,
        evidence=evidence, matched_at=T0, item_id=n, guid=f"g{n}", title=title,
        summary=summary, link=f"https://news.example/{n}" if link == "auto" else link,
        published=T0 - timedelta(hours=hours), lang=None, feed_url=f"https://{feed}.example/rss",
        feed_name=feed)


def evidence_for(text: str, term: str, field_name: str = "title") -> tuple[Evidence, ...]:
    """Evidence that ``term`` matched where it first appears in ``text``."""
    start = text.index(term)
    return (Evidence(field_name, term, term, start, start + len(term), 100.0),)


def a_digest(kind: str = "digest", *, link: str = "https://reuters.example/a?x=1&y=2"
             ) -> D.Digest:
    """Three hits of two topics, one story told twice, evidence in title and summary."""
    title = "Drone strike halts loadings at CPC terminal near Novorossiysk"
    summary = "The Caspian Pipeline Consortium said loadings stopped."
    hits = [hit(title, summary, score=93, link=link,
                evidence=evidence_for(title, "CPC")
                + evidence_for(summary, "Caspian Pipeline Consortium", "summary")),
            hit(title + " - Interfax", feed="Interfax", link="https://interfax.example/b"),
            hit("Kazakh crude diverted to BTC", rule="btc-diversion")]
    return D.build_digest("energy", hits, TITLES, T0, kind=kind, timezone="Asia/Almaty")


def big_digest(n: int = 120, summary: str = "Summary text " * 30) -> D.Digest:
    """``n`` long stories in each of three topics: more than any one message holds."""
    hits = [hit(f"Story {i} about pipeline number {i}", summary, rule=rule,
                link=f"https://news.example/{rule}/{i}?" + "q" * 150, hours=i)
            for rule in ("cpc-disruption", "btc-diversion", "eaeu-grain-ban") for i in range(n)]
    return D.build_digest("energy", hits, TITLES, T0)


def hostile_hits(title: str, summary: str, outlet: str, link: str) -> list[StoredHit]:
    """Two hits of one story made of any feed text (hypothesis): the first with its
    evidence on the title's first characters, the second another outlet's copy."""
    evidence = (Evidence("title", "t", title[:3], 0, min(3, len(title)), 99.0),) \
        if title else ()
    return [hit(title or "t", summary, feed=outlet, link=link, evidence=evidence),
            hit((title or "t") + " - x", summary, feed=outlet,
                link="https://ok.example/" + link)]
