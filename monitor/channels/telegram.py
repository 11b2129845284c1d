"""Telegram: a bot posts each digest to a chat through the Bot API's ``sendMessage``.

Format. One request per message part::

    POST {telegram_api_url}/bot{token}/sendMessage
    {"chat_id": "-1001234567890", "text": "<b>energy: 3 new ...</b>\\n...",
     "parse_mode": "HTML", "disable_web_page_preview": true}

The text is Telegram's HTML subset, rendered by :func:`telegram_messages`: the
headline in ``<b>``, the desk and time in ``<i>``, per topic a bold title and
per story a bullet with the title linked (``<a href>``, http(s) only: the
digest's :func:`~monitor.digest.safe_url`), outlet, host and time, the
snippet, and the other outlets as links. Matched terms (the digest's
``Span.mark``) are bold. Every piece of feed text is escaped (``&``, ``<``,
``>``; ``"`` too inside ``href``), so it can neither open a tag nor fake a
link, and no other tag is ever written.

Limits. Telegram takes 4,096 characters of text after entity parsing, counted
in UTF-16 code units. Each part's *raw* HTML is kept within that (so its
visible text is too), counted the same way. Parts are cut between stories and
topics, never inside a tag or an entity; parts after the first open with
"(part n of N)"; a single story too long for one message is cut at a piece
of text, with an ellipsis. Parts go out in order, ``pause`` seconds apart
(Telegram allows about one message a second in a chat, 20 a minute in a
group); each confirmed part is reported through
:attr:`~monitor.channels.base.Envelope.on_part_sent` and a retry starts at
``envelope.first_part``, so nothing is sent twice.

Errors. Telegram answers ``{"ok": true, "result": ...}``, or ``{"ok": false,
"error_code": N, "description": "...", "parameters": {...}}`` with N as the
HTTP status: 429 is transient and says when to come back
(``parameters.retry_after``), 5xx is transient; 400 (chat not found, a group
that became a supergroup, a bad request), 401 (bad token), 403 (the bot was
blocked, kicked, or never added) and 404 (no such bot) are permanent, with a
hint naming the key to fix.

Secrets. The bot token is a :class:`~monitor.config_keys.Secret` (``env:`` or
``file:``), revealed at send time only. It is part of the request URL, so no
error message, log line or ``repr`` here contains the URL or the token:
errors name the API host at most, and Telegram's own description is scrubbed
of the token should it ever be echoed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from monitor.channels.base import ChannelSpec, Envelope, Response, post, reveal, send_parts
from monitor.config_keys import Invalid, Key, http_url, secret
from monitor.errors import NotifyError
from monitor.text import parse_retry_after, truncate

if TYPE_CHECKING:
    from monitor.config_keys import Secret
    from monitor.digest import Digest, Section, Span, Story
    from monitor.settings import DeskConfig, Settings

__all__ = [
    "DEFAULT_API_URL",
    "TELEGRAM_LIMIT",
    "TelegramNotifier",
    "TelegramOptions",
    "telegram_escape",
    "telegram_length",
    "telegram_messages",
]

DEFAULT_API_URL = "https://api.telegram.org"

#: Characters of message text Telegram accepts, in UTF-16 code units.
TELEGRAM_LIMIT = 4096

_PART_HEADLINE_CHARS = 120  # the headline repeated on later parts is cut to this
_NOTE_CHARS = 2000
_TERMS_CHARS = 300

# What Bot API tokens look like (123456789:AAH...): checked before the token is put in
# a URL, so a pasted value with '/', '?' or spaces cannot change which URL is called.
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,200}")
# A numeric chat id (groups and channels are negative), or a public @username.
_CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")


# -- the keys a desk sets --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelegramOptions:
    """A desk's Telegram keys.

    ``telegram_bot_token`` is a secret reference (``env:NAME`` / ``file:PATH``)
    to the token BotFather gave; ``telegram_chat_id`` the chat to post to
    (``"-1001234567890"``, or ``"@channelname"`` for a public channel);
    ``telegram_api_url`` the Bot API server (a self-hosted one, or a test's).
    Either of the first two without the other is reported by :meth:`problems`.
    """

    telegram_bot_token: Secret | None = None
    telegram_chat_id: str = ""
    telegram_api_url: str = DEFAULT_API_URL

    def problems(self) -> list[tuple[str, str]]:
        """``(key, message)`` for each value that cannot work; the token is not read."""
        out = []
        if self.telegram_bot_token is None:
            out.append(("telegram_bot_token", "is required with telegram_chat_id "
                        "(env:NAME or file:PATH of the token BotFather gave)"))
        if not self.telegram_chat_id:
            out.append(("telegram_chat_id", "is required with telegram_bot_token "
                        "(the chat to post to)"))
        elif not _CHAT_ID.fullmatch(self.telegram_chat_id):
            out.append(("telegram_chat_id", "expected a numeric chat id such as "
                        "\"-1001234567890\" or a channel's \"@username\""))
        parts = urlsplit(self.telegram_api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            out.append(("telegram_api_url", "expected an http(s) URL such as "
                        f"\"{DEFAULT_API_URL}\""))
        return out


def _chat_id(value: Any, base: object) -> str:
    """A chat id as TOML gives it: a string, or the bare number of a group or channel."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not a chat id such as \"-1001234567890\" or \"@channel\"")
    return value.strip()


DESK_KEYS = (
    Key("telegram_bot_token", secret, "the bot's token from BotFather: env:NAME or file:PATH",
        secret=True),
    Key("telegram_chat_id", _chat_id, "the chat, group or channel to post to"),
    Key("telegram_api_url", http_url, "the Bot API server (default api.telegram.org)"),
)


def _options(values: Mapping[str, Any]) -> TelegramOptions | None:
    if values.get("telegram_bot_token") is None and not values.get("telegram_chat_id"):
        return None  # the desk does not use Telegram (an API URL alone changes nothing)
    return TelegramOptions(**values)


def _problems(options: object, table: object | None) -> list[tuple[str, str]]:
    assert isinstance(options, TelegramOptions)
    return options.problems()


# -- rendering -----------------------------------------------------------------------


def telegram_escape(text: str) -> str:
    """Text for Telegram HTML: ``&``, ``<`` and ``>`` as entities, nothing else parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return telegram_escape(value).replace('"', "&quot;")


def telegram_length(text: str) -> int:
    """A length as Telegram counts it: UTF-16 code units (an emoji past U+FFFF is two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class _Run:
    """A piece of plain text and how it is shown; rendering escapes it."""

    text: str
    bold: bool = False
    italic: bool = False
    href: str | None = None


_Line = Sequence[_Run]


def _render_run(run: _Run) -> str:
    text = telegram_escape(run.text)
    if run.bold and run.text.strip():
        text = f"<b>{text}</b>"
    if run.italic and run.text.strip():
        text = f"<i>{text}</i>"
    return text


def _render_line(runs: _Line) -> str:
    """Runs as HTML; neighbours with one ``href`` share one ``<a>``, so every tag closes
    in the line that opened it."""
    out = []
    i = 0
    while i < len(runs):
        href = runs[i].href
        j = i
        while j < len(runs) and runs[j].href == href:
            j += 1
        inner = "".join(_render_run(r) for r in runs[i:j])
        out.append(f'<a href="{_attribute(href)}">{inner}</a>' if href else inner)
        i = j
    return "".join(out)


_ELLIPSIS = _Run("…")


def _cut_line(runs: _Line, budget: int) -> str:
    """The longest start of ``runs`` that fits ``budget`` with an ellipsis after it:
    cut between characters of the plain text, so never inside a tag or an entity."""
    def fits(candidate: list[_Run]) -> bool:
        return telegram_length(_render_line([*candidate, _ELLIPSIS])) <= budget

    if not fits([]):
        return ""
    kept: list[_Run] = []
    for run in runs:
        if fits([*kept, run]):
            kept.append(run)
            continue
        lo, hi = 0, len(run.text)  # the longest prefix of this run that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits([*kept, dataclasses.replace(run, text=run.text[:mid])]):
                lo = mid
            else:
                hi = mid - 1
        if run.text[:lo].strip():
            kept.append(dataclasses.replace(run, text=run.text[:lo].rstrip()))
        break
    return _render_line([*kept, _ELLIPSIS])


def _fit(lines: Sequence[_Line], budget: int) -> str:
    """Lines as HTML within ``budget``: whole lines while they fit, the next one cut."""
    rendered = [_render_line(line) for line in lines]
    html = "\n".join(rendered)
    if telegram_length(html) <= budget:
        return html
    kept: list[str] = []
    for line, text in zip(lines, rendered, strict=True):
        if telegram_length("\n".join([*kept, text])) <= budget:
            kept.append(text)
            continue
        room = budget - telegram_length("\n".join(kept)) - (1 if kept else 0)
        cut = _cut_line(line, room)
        if cut:
            kept.append(cut)
        break
    return "\n".join(kept)


def _spans(spans: Sequence[Span], href: str | None = None) -> list[_Run]:
    return [_Run(s.text, bold=s.mark, href=href) for s in spans]


def _story_lines(story: Story, section: Section, kind: str) -> list[_Line]:
    title = _spans(story.title, story.url) or [_Run("link" if story.url else "(no title)",
                                                    href=story.url)]
    head: list[_Run] = [_Run("• ")]
    if kind == "alert":
        head += [_Run(section.label, bold=True), _Run(": ")]
    where = story.outlet + (f" ({story.host})" if story.host else "")
    head += [*title, _Run(f" — {where}, {story.when}")]
    if kind == "alert":
        if story.terms:
            head.append(_Run(truncate(" · terms: " + ", ".join(story.terms), _TERMS_CHARS)))
    else:
        head.append(_Run(f" · score {story.score:.0f}"))
    lines: list[_Line] = [head]
    if kind != "alert" and story.snippet:
        lines.append([_Run("    "), *_spans(story.snippet)])
    if story.more:
        more: list[_Run] = [_Run(f"    +{len(story.more)} more: ")]
        for i, m in enumerate(story.more):
            if i:
                more.append(_Run(", "))
            more.append(_Run(m.label or m.host or "link", href=m.url))
        lines.append(more)
    return lines


def _units(digest: Digest) -> list[list[_Line]]:
    """The digest as blocks never split across parts: the intro, then each story (a
    topic's title travels with its first story)."""
    counts = " · ".join(f"{s.label} {s.count}" for s in digest.sections)
    intro: list[_Line] = [
        [_Run(digest.headline, bold=True)],
        [_Run(f"{digest.desk} · {digest.when}" + (f" · {counts}" if counts else ""),
              italic=True)],
    ]
    if digest.note:
        intro.append([_Run(truncate(digest.note, _NOTE_CHARS))])
    elif digest.empty:
        intro.append([_Run("Nothing new matched since the last digest.")])
    units = [intro]
    for section in digest.sections:
        header: list[_Line] = []
        if digest.kind != "alert":
            sev = f" · {section.severity}" if section.severity else ""
            header = [[_Run(section.title, bold=True), _Run(f"{sev} · {section.new}")]]
        for story in section.stories:
            units.append(header + _story_lines(story, section, digest.kind))
            header = []
        if header:
            units.append(header)
    return units


def _part_marker(digest: Digest, n: int, total: int) -> str:
    return _render_line([_Run(f"{truncate(digest.headline, _PART_HEADLINE_CHARS)} "
                              f"(part {n} of {total})", italic=True)])


def telegram_messages(digest: Digest, *, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The digest as Telegram HTML message texts, in sending order, each within ``limit``
    UTF-16 code units of raw HTML."""
    # Room for the "(part n of N)" line is kept on every part but the first.
    rest = limit - telegram_length(_part_marker(digest, 9999, 9999)) - 2
    parts: list[list[str]] = [[]]
    used = 0
    for unit in _units(digest):
        html = _fit(unit, rest)
        if not html:
            continue
        cost = telegram_length(html)
        room = limit if len(parts) == 1 else rest
        if parts[-1] and used + 2 + cost > room:
            parts.append([])
            used = 0
        used += cost + (2 if parts[-1] else 0)
        parts[-1].append(html)
    total = len(parts)
    return ["\n\n".join(([_part_marker(digest, n, total)] if n > 1 else []) + blocks)
            for n, blocks in enumerate(parts, start=1)]


# -- sending ------------------------------------------------------------------------


class TelegramNotifier:
    """Posts digests to one Telegram chat as its bot."""

    channel: ClassVar[str] = "telegram"

    def __init__(self, token: Secret, chat_id: str, *, api_url: str = DEFAULT_API_URL,
                 timeout: float = 15.0, pause: float = 1.0) -> None:
        self.token = token
        self.chat_id = chat_id
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.pause = pause

    @classmethod
    def from_options(cls, options: TelegramOptions, *, timeout: float = 15.0,
                     pause: float = 1.0) -> TelegramNotifier:
        assert options.telegram_bot_token is not None  # checked with the configuration
        return cls(options.telegram_bot_token, options.telegram_chat_id,
                   api_url=options.telegram_api_url, timeout=timeout, pause=pause)

    @classmethod
    def for_desk(cls, desk: DeskConfig, settings: Settings, options: Mapping[str, Any]
                 ) -> TelegramNotifier:
        mine = desk.channel_options[cls.channel]
        assert isinstance(mine, TelegramOptions)
        return cls.from_options(mine, timeout=options.get("timeout", 15.0),
                                pause=options.get("telegram_pause", 1.0))

    def __repr__(self) -> str:
        # The Secret shows its reference only; the URL with the token is never built here.
        return (f"TelegramNotifier(chat_id={self.chat_id!r}, "
                f"api={urlsplit(self.api_url).hostname!r}, token={self.token})")

    def _reveal(self) -> str:
        token = reveal(self.channel, self.token, "bot token")
        if not _TOKEN.fullmatch(token):
            raise NotifyError(self.channel, f"bot token {self.token}: not a Bot API token "
                                            "(digits, ':', then letters, digits, '-', '_')",
                              permanent=True)
        return token

    def send(self, digest: Digest, envelope: Envelope) -> None:
        import json

        token = self._reveal()
        url = f"{self.api_url}/bot{token}/sendMessage"

        def send_one(text: str, what: str) -> None:
            body = json.dumps({"chat_id": self.chat_id, "text": text, "parse_mode": "HTML",
                               "disable_web_page_preview": True}, ensure_ascii=False).encode()
            resp = post(self.channel, url, body,
                        {"Content-Type": "application/json; charset=utf-8"},
                        timeout=self.timeout)
            error = _failure(resp, what, token)
            if error is not None:
                raise error

        send_parts(telegram_messages(digest), envelope, self.pause, send_one)


# -- what Telegram answered ----------------------------------------------------------

_OK = re.compile(r'"ok"\s*:\s*(true|false)')
_FIELDS = {name: re.compile(rf'"{name}"\s*:\s*(-?[0-9]+)')
           for name in ("error_code", "retry_after", "migrate_to_chat_id")}
_DESCRIPTION = re.compile(r'"description"\s*:\s*"((?:[^"\\]|\\.)*)')


def _reply(body: str) -> dict[str, Any]:
    """Telegram's answer as ``ok``, ``error_code``, ``description``, ``retry_after`` and
    ``migrate_to_chat_id``: parsed as JSON, else picked out of the text (the body
    reaches us cut to a couple of hundred characters)."""
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        params = doc.get("parameters")
        params = params if isinstance(params, Mapping) else {}
        return {"ok": doc.get("ok"), "error_code": doc.get("error_code"),
                "description": doc.get("description"),
                "retry_after": params.get("retry_after"),
                "migrate_to_chat_id": params.get("migrate_to_chat_id")}
    out: dict[str, Any] = {}
    if m := _OK.search(body):
        out["ok"] = m.group(1) == "true"
    for name, pattern in _FIELDS.items():
        if m := pattern.search(body):
            out[name] = int(m.group(1))
    if m := _DESCRIPTION.search(body):
        try:
            out["description"] = json.loads(f'"{m.group(1)}"')
        except ValueError:
            out["description"] = m.group(1)
    return out


def _hint(code: int, description: str, migrate_to: object) -> str:
    if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
        return (f" (the group became a supergroup: set telegram_chat_id = "
                f"\"{migrate_to}\")")
    if code == 401:
        return " (check telegram_bot_token)"
    if code == 404:
        return " (check telegram_bot_token and telegram_api_url)"
    if code == 403:
        return " (add the bot to the chat, or unblock it)"
    if code == 400 and "chat not found" in description.lower():
        return " (check telegram_chat_id, and that the bot was added to the chat)"
    return ""


def _failure(resp: Response, what: str, token: str) -> NotifyError | None:
    """None when Telegram took the message; else the error, transient or permanent."""
    doc = _reply(resp.body)
    if 200 <= resp.status < 300 and doc.get("ok") is not False:
        return None
    code = doc.get("error_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = resp.status
    description = doc.get("description")
    description = " ".join(str(description).split()) if description else resp.body
    retry_after = doc.get("retry_after")
    wait = (float(retry_after) if isinstance(retry_after, int | float)
            and not isinstance(retry_after, bool) and retry_after >= 0
            else parse_retry_after(resp.headers.get("Retry-After")
                                   or resp.headers.get("retry-after")))
    transient = any(c in (408, 425, 429) or c >= 500 for c in (code, resp.status))
    detail = (f"{what}: HTTP {resp.status}" + (f" {truncate(description, 200)}"
                                               if description else "")
              + _hint(code, description or "", doc.get("migrate_to_chat_id")))
    return NotifyError(TelegramNotifier.channel, _scrub(detail, token),
                       permanent=not transient, retry_after=wait)


def _scrub(text: str, token: str) -> str:
    """``text`` without the token or its secret half, should a server ever echo them."""
    text = text.replace(token, "<token>")
    secret = token.partition(":")[2]
    return text.replace(secret, "<token>") if len(secret) >= 4 else text


SPEC = ChannelSpec("telegram", DESK_KEYS, _options, TelegramNotifier.for_desk,
                   cross_check=_problems)
