"""Microsoft Teams: an Adaptive Card per message, posted to a Teams *Workflows* webhook.

The desk creates a workflow in Teams (Power Automate's "When a Teams webhook
request is received", then "Post card in a chat or channel"); its URL is the
``teams_webhook`` key. The retired Office 365 connectors and their MessageCard
format are not used.

Format. One POST per message part, UTF-8 JSON::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "msteams": {"width": "Full"}, "body": [...]}}]}

The card (:func:`teams_cards`) is TextBlocks with ``wrap``: the headline large
and bold, the desk and time, per topic a bold title, per story a container
with the title as a markdown link ``[title](url)`` (http(s) only, the
digest's :func:`~monitor.digest.safe_url`), outlet, host and time, the
snippet with the matched terms in bold, and the other outlets as links.
TextBlock markdown is parsed, so every piece of feed text goes through
:func:`teams_escape`: ``\\ ` * _ ~ [ ] ( ) < > # & ! |`` and braces are
backslash-escaped, and a leading list marker too, so feed text can neither
add a link, format, an HTML entity nor a ``{{DATE()}}`` function.

Limits. Workflows webhooks refuse payloads over about 28 KB; a digest is cut
into cards of at most :data:`TEAMS_BUDGET` bytes of JSON, between stories
(a topic's title travels with its first story), later cards opening with
"(part n of N)"; one story with too many outlets to fit is cut with an
ellipsis. Cards go out in order, ``pause`` seconds apart; each confirmed card
is reported through :attr:`~monitor.channels.base.Envelope.on_part_sent`, and a
retry starts at ``envelope.first_part``.

Errors. 200 and 202 (any 2xx) are success. 429 (with Retry-After), 408, 425
and 5xx are transient; any other status (400 a card the flow refused, 401/403
a bad signature, 404 a deleted or disabled flow) is permanent.

Secrets. The Workflows URL carries its signature (``sig=``) and is a
:class:`~monitor.config_keys.Secret`: errors name its host at most, and what the
server answers is scrubbed of the URL and the signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from monitor.channels.base import ChannelSpec, Envelope, classify, post, reveal, send_parts
from monitor.config_keys import Key, secret
from monitor.errors import NotifyError
from monitor.text import truncate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from monitor.config_keys import Secret
    from monitor.digest import Digest, Section, Span, Story
    from monitor.settings import DeskConfig, Settings

__all__ = [
    "CARD_SCHEMA",
    "TEAMS_BUDGET",
    "TeamsNotifier",
    "TeamsOptions",
    "teams_cards",
    "teams_escape",
    "teams_message",
    "teams_size",
]

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

#: Bytes of JSON one POST may carry: well under the webhook's ~28 KB.
TEAMS_BUDGET = 20_000

_PART_HEADLINE_CHARS = 120
_NOTE_CHARS = 2000
_TERMS_CHARS = 300


@dataclass(frozen=True, slots=True)
class TeamsOptions:
    """A desk's Teams key: ``teams_webhook``, a secret reference (``env:NAME`` /
    ``file:PATH``) to the workflow's URL."""

    teams_webhook: Secret


DESK_KEYS = (Key("teams_webhook", secret, "the Workflows webhook's URL: env:NAME or file:PATH",
                 secret=True),)


def _options(values: Mapping[str, Any]) -> TeamsOptions | None:
    return TeamsOptions(**values) if values.get("teams_webhook") is not None else None


# -- rendering -----------------------------------------------------------------------

# Markdown punctuation TextBlocks act on, '&' (entities), '<' '>' (HTML, <at> mentions),
# and braces ({{DATE(...)}} functions): a backslash makes each a plain character.
_SPECIAL = re.compile(r"([\\`*_~\[\]()<>#&!|{}])")
_LIST_MARKER = re.compile(r"^(\s*)([-+]|[0-9]+\.)(?=\s|$)")


def teams_escape(text: str) -> str:
    """Feed text for Adaptive Card markdown: shown as written, never parsed."""
    text = _SPECIAL.sub(r"\\\1", text)
    return _LIST_MARKER.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1],
                            text)


def _link(url: str | None, label: str) -> str:
    text = teams_escape(label) or "link"
    if not url:
        return text
    # safe_url left no space, '<', '>' or backslash; parentheses would end the target.
    return f"[{text}]({url.replace('(', '%28').replace(')', '%29')})"


def _spans(spans: Sequence[Span]) -> str:
    out = []
    for s in spans:
        if s.mark and s.text.strip():
            # "** x**" is not bold: the spaces go outside the markers.
            lead = s.text[:len(s.text) - len(s.text.lstrip())]
            trail = s.text[len(s.text.rstrip()):]
            out.append(f"{lead}**{teams_escape(s.text.strip())}**{trail}")
        else:
            out.append(teams_escape(s.text))
    return "".join(out)


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _json_chars(text: str) -> int:
    """Bytes ``text`` adds inside a JSON string."""
    import json

    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def teams_size(obj: Any) -> int:
    """Bytes of ``obj`` as it is posted (compact UTF-8 JSON)."""
    import json

    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode())


def _story(story: Story, section: Section, kind: str, budget: int) -> dict[str, Any]:
    """A story as a container within ``budget`` bytes: the other outlets are listed
    while they fit, then an ellipsis."""
    title = _link(story.url, story.title_text) if story.url else (
        _spans(story.title) or teams_escape("(no title)"))
    # Every bracket left unescaped in a card is one of its links: ours are escaped too.
    where = teams_escape(story.outlet + (f" ({story.host})" if story.host else "")
                         + f", {story.when}")
    head = f"{title} — {where}"
    if kind == "alert":
        head = f"**{teams_escape(section.label)}**: {head}"
        if story.terms:
            head += " · terms: " + teams_escape(truncate(", ".join(story.terms),
                                                         _TERMS_CHARS))
    else:
        head += f" · score {story.score:.0f}"
    items = [_block(head)]
    if kind != "alert" and story.snippet:
        items.append(_block(_spans(story.snippet), spacing="Small"))
    container: dict[str, Any] = {"type": "Container", "spacing": "Medium", "items": items}
    if story.more:
        more = _block("", spacing="Small", isSubtle=True)
        items.append(more)
        room = budget - teams_size(container) - 1  # 1: the comma before it in the body
        text = f"+{len(story.more)} more: "
        room -= _json_chars(text) + _json_chars(" …")
        for i, m in enumerate(story.more):
            piece = (", " if i else "") + _link(m.url, m.label or m.host or "link")
            cost = _json_chars(piece)
            if cost > room:
                text += " …"
                break
            text += piece
            room -= cost
        more["text"] = text
    return container


def _card(body: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4",
            "msteams": {"width": "Full"}, "body": body}


def teams_message(card: dict[str, Any]) -> dict[str, Any]:
    """What is posted to the workflow: a message with ``card`` as its one attachment."""
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


def _part_marker(digest: Digest, n: int, total: int) -> dict[str, Any]:
    return _block(teams_escape(f"{truncate(digest.headline, _PART_HEADLINE_CHARS)} "
                               f"(part {n} of {total})"), isSubtle=True)


def teams_cards(digest: Digest, *, budget: int = TEAMS_BUDGET) -> list[dict[str, Any]]:
    """The digest as Adaptive Cards, in sending order; each posted message
    (:func:`teams_message`) stays within ``budget`` bytes of JSON."""
    # Every card is measured as if it carried the "(part n of N)" line.
    room = budget - teams_size(teams_message(_card([_part_marker(digest, 9999, 9999)])))
    counts = " · ".join(f"{s.label} {s.count}" for s in digest.sections)
    intro = [_block(teams_escape(digest.headline), size="Large", weight="Bolder"),
             _block(teams_escape(f"{digest.desk} · {digest.when}"
                                 + (f" · {counts}" if counts else "")),
                    isSubtle=True, spacing="None")]
    if digest.note:
        intro.append(_block(teams_escape(truncate(digest.note, _NOTE_CHARS))))
    elif digest.empty:
        intro.append(_block("Nothing new matched since the last digest."))
    units: list[list[dict[str, Any]]] = [intro]
    for section in digest.sections:
        header: list[dict[str, Any]] = []
        if digest.kind != "alert":
            sev = f" · {section.severity}" if section.severity else ""
            header = [_block(teams_escape(f"{section.title}{sev} · {section.new}"),
                             size="Medium", weight="Bolder", separator=True, spacing="Large")]
        for story in section.stories:
            head_cost = sum(teams_size(e) + 1 for e in header)
            units.append([*header, _story(story, section, digest.kind, room - head_cost)])
            header = []
        units.extend([header] if header else [])

    parts: list[list[dict[str, Any]]] = [[]]
    used = 0
    for unit in units:
        cost = sum(teams_size(e) + 1 for e in unit)
        if parts[-1] and used + cost > room:
            parts.append([])
            used = 0
        parts[-1].extend(unit)
        used += cost
    total = len(parts)
    return [_card(([_part_marker(digest, n, total)] if n > 1 else []) + body)
            for n, body in enumerate(parts, start=1)]


# -- sending ------------------------------------------------------------------------


class TeamsNotifier:
    """Posts digests to one Teams chat or channel through a Workflows webhook."""

    channel: ClassVar[str] = "teams"

    def __init__(self, webhook: Secret, *, timeout: float = 15.0, pause: float = 1.0) -> None:
        self.webhook = webhook
        self.timeout = timeout
        self.pause = pause

    @classmethod
    def from_options(cls, options: TeamsOptions, *, timeout: float = 15.0,
                     pause: float = 1.0) -> TeamsNotifier:
        return cls(options.teams_webhook, timeout=timeout, pause=pause)

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> TeamsNotifier:
        mine = desk.channel_options[cls.channel]
        assert isinstance(mine, TeamsOptions)
        return cls.from_options(mine, timeout=options.get("timeout", 15.0),
                                pause=options.get("teams_pause", 1.0))

    def __repr__(self) -> str:
        return f"TeamsNotifier(webhook={self.webhook})"  # the reference, never the URL

    def send(self, digest: Digest, envelope: Envelope) -> None:
        import json

        url = reveal(self.channel, self.webhook, "webhook")

        def send_one(card: dict[str, Any], what: str) -> None:
            body = json.dumps(teams_message(card), ensure_ascii=False,
                              separators=(",", ":")).encode()
            resp = post(self.channel, url, body,
                        {"Content-Type": "application/json; charset=utf-8"},
                        timeout=self.timeout)
            if not 200 <= resp.status < 300:
                error = classify(self.channel, resp, what)
                raise NotifyError(self.channel, _scrub(error.message, url),
                                  permanent=error.permanent, retry_after=error.retry_after)

        send_parts(teams_cards(digest), envelope, self.pause, send_one)

def _scrub(text: str, url: str) -> str:
    """``text`` without the URL, its query or its signature, should a server echo them."""
    parts = urlsplit(url)
    secrets = [url, parts.query, parts.path if "/workflows/" in parts.path else ""]
    secrets += [v for k, v in parse_qsl(parts.query) if k == "sig"]
    secrets += re.findall(r"(?:^|&)sig=([^&]+)", parts.query)  # as written, still encoded
    for value in sorted(filter(None, secrets), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "<secret>")
    return text


SPEC = ChannelSpec("teams", DESK_KEYS, _options, TeamsNotifier.for_desk)
