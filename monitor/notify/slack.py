"""Slack: an incoming webhook fed Block Kit messages.

The blocks come from :func:`monitor.digest.slack_messages` (escaped, and split
to stay within Slack's limits). Parts go out in order, a short pause apart
(Slack allows about one message a second per webhook); each confirmed part is
reported through :attr:`Envelope.on_part_sent`, so a retry after a failure in
the middle sends only the parts that did not go out.

Slack answers 200 ``ok``; 404 ``no_service`` / ``channel_not_found``, 403
``action_prohibited``, 410 ``channel_is_archived`` and 400 ``invalid_payload``
are permanent; 429 (with Retry-After) and 5xx are transient. The webhook URL
is a secret: it appears in no message, error or log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.digest import slack_messages
from monitor.errors import ConfigError, NotifyError
from monitor.notify.base import Envelope, classify, post

if TYPE_CHECKING:
    from monitor.digest import Digest
    from monitor.settings import DeskConfig, Secret, Settings


class SlackNotifier:
    channel: ClassVar[str] = "slack"

    def __init__(self, webhook: Secret, *, timeout: float = 15.0, pause: float = 1.0) -> None:
        self.webhook = webhook
        self.timeout = timeout
        self.pause = pause

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> SlackNotifier:
        assert desk.slack_webhook is not None
        return cls(desk.slack_webhook, timeout=options.get("timeout", 15.0),
                   pause=options.get("slack_pause", 1.0))

    def send(self, digest: Digest, envelope: Envelope) -> None:
        try:
            url = self.webhook.reveal()
        except ConfigError as e:
            raise NotifyError(self.channel, f"webhook {self.webhook}: {e.problems[0].message}"
                              ) from e
        messages = slack_messages(digest)
        for n, message in enumerate(messages):
            if n < envelope.first_part:
                continue  # delivered by an earlier attempt
            if n > envelope.first_part and self.pause:
                time.sleep(self.pause)
            body = json.dumps(message, ensure_ascii=False).encode()
            resp = post(self.channel, url, body,
                        {"Content-Type": "application/json; charset=utf-8"},
                        timeout=self.timeout)
            if not 200 <= resp.status < 300:
                part = f"part {n + 1} of {len(messages)}" if len(messages) > 1 else "message"
                raise classify(self.channel, resp, part)
            if envelope.on_part_sent is not None and len(messages) > 1:
                envelope.on_part_sent(n + 1)
