"""A generic webhook: one signed JSON document per digest or alert.

The body is :func:`monitor.digest.webhook_document` as UTF-8 JSON. Headers::

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

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from monitor.digest import webhook_document
from monitor.errors import ConfigError, NotifyError
from monitor.notify.base import Envelope, classify, post

if TYPE_CHECKING:
    from monitor.digest import Digest
    from monitor.settings import DeskConfig, Secret, Settings

SIGNATURE_HEADER = "X-News-Monitor-Signature"
TIMESTAMP_HEADER = "X-News-Monitor-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           now: float | None = None, tolerance: float = 300.0) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature (constant time)."""
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
        assert desk.webhook_url is not None
        return cls(desk.webhook_url, desk.webhook_secret, timeout=options.get("timeout", 15.0))

    def send(self, digest: Digest, envelope: Envelope) -> None:
        body = json.dumps(webhook_document(digest, delivery_id=envelope.delivery_id),
                          ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(self.clock())
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-News-Monitor-Event": digest.kind,
                   "X-News-Monitor-Delivery": str(envelope.delivery_id),
                   TIMESTAMP_HEADER: str(stamp)}
        if self.secret is not None:
            try:
                headers[SIGNATURE_HEADER] = sign(self.secret.reveal(), stamp, body)
            except ConfigError as e:
                raise NotifyError(self.channel, f"secret {self.secret}: "
                                                f"{e.problems[0].message}") from e
        resp = post(self.channel, self.url, body, headers, timeout=self.timeout)
        if not 200 <= resp.status < 300:
            raise classify(self.channel, resp, urlsplit(self.url).hostname or "webhook")
