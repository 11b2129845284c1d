"""Stored hits for the digest and channel tests: ``hit()`` makes one, each with
a new id, matched at ``T0``; ``TITLES`` names their rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

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
