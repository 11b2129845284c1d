"""Loopback stand-ins for the chat services a channel posts to.

``TelegramStandIn`` is a real HTTP server on 127.0.0.1 that answers the Bot API's
``sendMessage`` as Telegram does: it checks the token in the path, the chat, the
parse mode, parses the HTML strictly (only Telegram's tags, every tag closed,
only its entities) and counts the visible text in UTF-16 code units against
4,096; it records every call and can be told to answer request N with a 429 and
``retry_after``, 400 chat not found, 401, 403, 500, or anything else.

``TeamsStandIn`` stands in for a Teams Workflows webhook: it checks the path and
the ``sig`` of the URL, the payload's size (the webhook refuses about 28 KB) and
its shape (a message with one Adaptive Card), answers 202, and can be told to
answer post N otherwise.

Hits and digests to send through them are in tests/hits.py.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from servers import LoopbackHTTP, Reply

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "ALL_PROXY")


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables: loopback tests must not go through one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- both stand-ins run on servers.LoopbackHTTP ----------------------------------------------


def _json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(doc), {"Content-Type": "application/json", **(headers or {})})


# -- Telegram ---------------------------------------------------------------------------

TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "tg-spoiler", "span", "blockquote"}
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_START_TAG = re.compile(r'([a-z-]+)((?:\s+[a-z-]+="[^"]*")*)\s*')


@dataclass(frozen=True)
class Entity:
    """A formatting entity Telegram made from a tag: offsets into the visible text."""

    tag: str
    start: int
    end: int
    href: str | None = None


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_telegram_html(text: str) -> tuple[str, list[Entity]]:
    """The visible text and entities of an HTML-mode message, read strictly; raises
    ValueError (Telegram's "can't parse entities") on any tag it does not support, a
    tag left open or closed out of order, a link inside a link, or an '&' or '<' that
    starts no entity or tag."""
    out: list[str] = []
    stack: list[tuple[str, int, str | None]] = []
    entities: list[Entity] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            j = text.find(">", i)
            if j < 0:
                raise ValueError(f"unclosed start tag at offset {i}")
            inner = text[i + 1:j]
            if inner.startswith("/"):
                name = inner[1:].strip()
                if not stack or stack[-1][0] != name:
                    raise ValueError(f"unmatched end tag {name!r}")
                tag, start, href = stack.pop()
                entities.append(Entity(tag, start, len("".join(out)), href))
            else:
                m = _START_TAG.fullmatch(inner)
                if not m or m.group(1) not in TELEGRAM_TAGS:
                    raise ValueError(f"unsupported start tag {inner[:30]!r}")
                attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', m.group(2)))
                href = None
                if m.group(1) == "a":
                    if any(t == "a" for t, _, _ in stack):
                        raise ValueError("a link inside a link")
                    href = html.unescape(attrs.get("href", ""))
                elif attrs and m.group(1) != "span":
                    raise ValueError(f"attributes on {m.group(1)!r}")
                stack.append((m.group(1), len("".join(out)), href))
            i = j + 1
        elif c == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ValueError(f"unsupported entity at offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif c == ">":
            raise ValueError(f"a bare '>' at offset {i}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise ValueError(f"can't find end tag corresponding to start tag {stack[-1][0]!r}")
    return "".join(out), entities


@dataclass(frozen=True)
class Sent:
    """A message the stand-in accepted, as a chat would show it."""

    chat_id: str
    html: str
    text: str
    entities: tuple[Entity, ...]


def telegram_error(code: int, description: str, **parameters: Any) -> Reply:
    doc: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        doc["parameters"] = parameters
    return _json_reply(code, doc)


def too_many_requests(retry_after: int) -> Reply:
    return telegram_error(429, f"Too Many Requests: retry after {retry_after}",
                          retry_after=retry_after)


def chat_not_found() -> Reply:
    return telegram_error(400, "Bad Request: chat not found")


def unauthorized() -> Reply:
    return telegram_error(401, "Unauthorized")


def forbidden(why: str = "bot was blocked by the user") -> Reply:
    return telegram_error(403, f"Forbidden: {why}")


def server_error() -> Reply:
    return telegram_error(500, "Internal Server Error")


def migrated(to: int) -> Reply:
    return telegram_error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                          migrate_to_chat_id=to)


class TelegramStandIn(LoopbackHTTP):
    """The Bot API for one bot (``token``) that is a member of ``chats``.

    ``calls`` holds every sendMessage body in arrival order, ``sent`` the messages
    accepted; ``fail_at[n]`` answers the n-th sendMessage call (1-based) instead.
    """

    TOKEN = "123456789:AAE-S3CR3T_t0ken_for_the_stand_in"

    def __init__(self, token: str = TOKEN,
                 chats: tuple[str, ...] = ("-1001234567890", "@energy_desk")) -> None:
        super().__init__()
        self.token = token
        self.chats = set(chats)
        self.calls: list[dict[str, Any]] = []
        self.sent: list[Sent] = []
        self.fail_at: dict[int, Reply] = {}
        self.paths: list[str] = []

    @property
    def api_url(self) -> str:
        return self.base

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            self.paths.append(path)
            m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
            if not m:
                return telegram_error(404, "Not Found")
            if m.group(1) != self.token:
                return unauthorized()
            if m.group(2) != "sendMessage":
                return telegram_error(404, "Not Found: method not found")
            if not headers.get("content-type", "").startswith("application/json"):
                return telegram_error(400, "Bad Request: message text is empty")
            doc = json.loads(body)
            self.calls.append(doc)
            if len(self.calls) in self.fail_at:
                return self.fail_at[len(self.calls)]
            return self._send(doc)

    def _send(self, doc: dict[str, Any]) -> Reply:
        chat = str(doc.get("chat_id"))
        if chat not in self.chats:
            return chat_not_found()
        if doc.get("parse_mode") != "HTML":
            return telegram_error(400, "Bad Request: unsupported parse_mode")
        try:
            text, entities = parse_telegram_html(str(doc.get("text", "")))
        except ValueError as e:
            return telegram_error(400, f"Bad Request: can't parse entities: {e}")
        if not text.strip():
            return telegram_error(400, "Bad Request: message text is empty")
        if utf16_length(text) > 4096:
            return telegram_error(400, "Bad Request: message is too long")
        self.sent.append(Sent(chat, doc["text"], text, tuple(entities)))
        return _json_reply(200, {"ok": True, "result": {
            "message_id": len(self.sent), "chat": {"id": chat, "type": "channel"},
            "date": 1767322800, "text": text}})



# -- Teams ------------------------------------------------------------------------------

TEAMS_MAX_BYTES = 28 * 1024
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def teams_error(status: int, code: str, message: str, headers: dict[str, str] | None = None
                ) -> Reply:
    return _json_reply(status, {"error": {"code": code, "message": message}}, headers)


def _check_element(element: Any) -> None:
    if not isinstance(element, dict):
        raise ValueError("a body element is not an object")
    if element.get("type") == "TextBlock":
        if not isinstance(element.get("text"), str) or element.get("wrap") is not True:
            raise ValueError("a TextBlock without text or wrap")
    elif element.get("type") == "Container":
        items = element.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("a Container without items")
        for item in items:
            _check_element(item)
    else:
        raise ValueError(f"unexpected element {element.get('type')!r}")


def check_teams_payload(doc: Any) -> dict[str, Any]:
    """The card of a valid Workflows payload; ValueError if the flow would refuse it."""
    if not isinstance(doc, dict) or doc.get("type") != "message":
        raise ValueError("not a message")
    attachments = doc.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        raise ValueError("expected one attachment")
    [attachment] = attachments
    if attachment.get("contentType") != ADAPTIVE or "contentUrl" not in attachment:
        raise ValueError("not an Adaptive Card attachment")
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise ValueError("the content is not an AdaptiveCard")
    if card.get("version") != "1.4" or not str(card.get("$schema", "")).startswith("http"):
        raise ValueError("the card has no version 1.4 and schema")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        raise ValueError("the card has no body")
    for element in body:
        _check_element(element)
    return card


class TeamsStandIn(LoopbackHTTP):
    """A Workflows webhook: ``url`` has its signature; ``cards`` holds the cards it
    accepted (202), ``bodies`` every POST body; ``fail_at[n]`` answers the n-th POST."""

    PATH = "/workflows/5b7f0c2e9a4d4e1f8c3b2a1d0e9f8a7b/triggers/manual/paths/invoke"
    SIG = "Zm9vYmFyLVNJR05BVFVSRS1zM2NyM3Q"

    def __init__(self, sig: str = SIG) -> None:
        super().__init__()
        self.sig = sig
        self.bodies: list[bytes] = []
        self.cards: list[dict[str, Any]] = []
        self.fail_at: dict[int, Reply] = {}

    @property
    def url(self) -> str:
        return (f"{self.base}{self.PATH}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun"
                f"&sv=1.0&sig={self.sig}")

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            parts = urlsplit(path)
            if parts.path != self.PATH:
                return teams_error(404, "TriggerNotFound", "The workflow was not found.")
            if parse_qs(parts.query).get("sig") != [self.sig]:
                return teams_error(401, "DirectApiInvalidAuthorizationSignature",
                                   "The provided authentication token is not valid.")
            self.bodies.append(body)
            if len(self.bodies) in self.fail_at:
                return self.fail_at[len(self.bodies)]
            if len(body) > TEAMS_MAX_BYTES:
                return teams_error(413, "RequestEntityTooLarge", "The request is too large.")
            try:
                card = check_teams_payload(json.loads(body))
            except ValueError as e:
                return teams_error(400, "InvalidRequestContent", str(e))
            self.cards.append(card)
            return Reply(202)

