"""A generic webhook: one signed JSON document per digest or alert.

Configuration: a desk's ``webhook_url`` (http or https) and, optionally,
``webhook_secret`` (a secret: env:NAME or file:PATH) to sign with.

The body is :func:`webhook_document` as UTF-8 JSON (see docs/delivery.md for
its fields). Headers::

    Content-Type: application/json; charset=utf-8
    X-News-Monitor-Event: digest | alert
    X-News-Monitor-Delivery: 42                  the same on a resend: drop duplicates
    X-News-Monitor-Timestamp: 1767322800         Unix seconds, when this attempt was signed
    X-News-Monitor-Signature: sha256=<hex>       only when the desk has webhook_secret

The signature is HMAC-SHA256, keyed with the desk's ``webhook_secret``, of
``"<timestamp>." + body`` (:func:`sign`). The timestamp is inside the signed
string, so a receiver that rejects timestamps more than a few minutes old
cannot be fed a captured request again (see docs/delivery.md for a verifier).

A 2xx is success; 429 (Retry-After honoured), 408 and 5xx are retried; any
other status is permanent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from monitor.channels.base import ChannelSpec, Envelope, classify, post, reveal
from monitor.config_keys import Key, Secret, http_url, secret
from monitor.models import isoformat_z

if TYPE_CHECKING:
    from monitor.digest import Digest
    from monitor.models import StoredHit
    from monitor.settings import DeskConfig, Settings

@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """A desk's webhook: where to POST, and the secret to sign with."""

    url: str
    secret: Secret | None = None


DESK_KEYS = (
    Key("webhook_url", http_url, "where the JSON document is POSTed", field="url"),
    Key("webhook_secret", secret, "HMAC-SHA256 key: env:NAME or file:PATH", secret=True,
        field="secret"),
)


def _options(values: Mapping[str, Any]) -> WebhookOptions | None:
    return WebhookOptions(**values) if values.get("url") else None


SIGNATURE_HEADER = "X-News-Monitor-Signature"
TIMESTAMP_HEADER = "X-News-Monitor-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    import hashlib
    import hmac

    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           now: float | None = None, tolerance: float = 300.0) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature (constant time)."""
    import hmac

    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


class WebhookNotifier:
    channel: ClassVar[str] = "webhook"

    def __init__(self, url: str, secret: Secret | None = None, *, timeout: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.clock = clock

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> WebhookNotifier:
        mine = desk.channel_options[cls.channel]
        assert isinstance(mine, WebhookOptions)
        return cls(mine.url, mine.secret, timeout=options.get("timeout", 15.0))

    def send(self, digest: Digest, envelope: Envelope) -> None:
        import json

        body = json.dumps(webhook_document(digest, delivery_id=envelope.delivery_id),
                          ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(self.clock())
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-News-Monitor-Event": digest.kind,
                   "X-News-Monitor-Delivery": str(envelope.delivery_id),
                   TIMESTAMP_HEADER: str(stamp)}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(reveal(self.channel, self.secret, "secret"), stamp,
                                             body)
        resp = post(self.channel, self.url, body, headers, timeout=self.timeout)
        if not 200 <= resp.status < 300:
            raise classify(self.channel, resp, urlsplit(self.url).hostname or "webhook")


SPEC = ChannelSpec("webhook", DESK_KEYS, _options, WebhookNotifier.for_desk)


# -- the document ---------------------------------------------------------------------


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
                "story": str(st.lead.story_key),
                "also": list(st.also),
                "page": st.page,
                "hits": [_hit_doc(h, str(st.lead.story_key))
                         for h in (st.members or (st.lead, *(m.hit for m in st.more)))],
            } for st in s.stories],
        } for s in digest.sections],
    }


def _hit_doc(h: StoredHit, story: str) -> dict[str, Any]:
    from monitor.highlight import TITLE_CHARS, clean, safe_url
    from monitor.text import truncate

    return {"id": h.id, "rule": h.rule_id, "severity": str(h.severity), "score": round(h.score, 1),
            "title": truncate(clean(h.title), TITLE_CHARS), "link": safe_url(h.link),
            "outlet": clean(h.shown_outlet), "feed": h.feed_url, "guid": h.guid,
            "published": isoformat_z(h.published), "matched_at": isoformat_z(h.matched_at),
            "story": story, "lang": h.lang,
            "evidence": [e.to_dict() for e in h.evidence]}
