"""Slack: an incoming webhook fed Block Kit messages.

Configuration: a desk's ``slack_webhook``, a secret (the URL carries its
token). The blocks are :func:`slack_messages`: feed text escaped
(:func:`slack_escape`) so that it can never ping ``<!channel>`` or disguise a
link, and split to stay within Slack's limits (:data:`SLACK_LIMITS`).

Parts go out in order, a short pause apart (Slack allows about one message a
second per webhook); each confirmed part is reported through
:attr:`Envelope.on_part_sent`, so a retry after a failure in the middle sends
only the parts that did not go out.

Slack answers 200 ``ok``; 404 ``no_service`` / ``channel_not_found``, 403
``action_prohibited``, 410 ``channel_is_archived`` and 400 ``invalid_payload``
are permanent; 429 (with Retry-After) and 5xx are transient. The webhook URL
is a secret: it appears in no message, error or log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.channels.base import ChannelSpec, Envelope, classify, post, reveal, send_parts
from monitor.config_keys import Key, Secret, secret
from monitor.text import truncate

if TYPE_CHECKING:
    from monitor.digest import Digest, Section, Span, Story
    from monitor.settings import DeskConfig, Settings


@dataclass(frozen=True, slots=True)
class SlackOptions:
    """A desk's Slack: its incoming webhook."""

    webhook: Secret


DESK_KEYS = (Key("slack_webhook", secret, "the incoming webhook's URL: env:NAME or file:PATH",
                 secret=True, field="webhook"),)


def _options(values: Mapping[str, Any]) -> SlackOptions | None:
    return SlackOptions(**values) if values.get("webhook") is not None else None


class SlackNotifier:
    channel: ClassVar[str] = "slack"

    def __init__(self, webhook: Secret, *, timeout: float = 15.0, pause: float = 1.0) -> None:
        self.webhook = webhook
        self.timeout = timeout
        self.pause = pause

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> SlackNotifier:
        mine = desk.channel_options[cls.channel]
        assert isinstance(mine, SlackOptions)
        return cls(mine.webhook, timeout=options.get("timeout", 15.0),
                   pause=options.get("slack_pause", 1.0))

    def send(self, digest: Digest, envelope: Envelope) -> None:
        import json

        url = reveal(self.channel, self.webhook, "webhook")

        def send_one(message: dict[str, Any], what: str) -> None:
            body = json.dumps(message, ensure_ascii=False).encode()
            resp = post(self.channel, url, body,
                        {"Content-Type": "application/json; charset=utf-8"},
                        timeout=self.timeout)
            if not 200 <= resp.status < 300:
                raise classify(self.channel, resp, what)

        send_parts(slack_messages(digest), envelope, self.pause, send_one)

SPEC = ChannelSpec("slack", DESK_KEYS, _options, SlackNotifier.for_desk)


# -- rendering --------------------------------------------------------------------

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
    if story.also:
        head += " · also " + slack_escape(", ".join(story.also))
    if story.page:
        head += " · " + _slack_link(story.page, "story page")
    lines = [truncate(head, limit)]
    if kind != "alert" and story.snippet:
        lines.append(truncate("      " + _slack_spans(story.snippet), limit))
    if story.more:
        line = f"      +{len(story.more)} more: "
        for i, m in enumerate(story.more):
            link = _slack_link(m.url, m.label) + ("" if i == len(story.more) - 1 else ", ")
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
                                          f"{section.new}", max_text)))
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
