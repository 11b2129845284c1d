"""The configuration: a TOML file (or the embedded default) -> frozen, typed settings.

Every problem is reported at once, each as ``file:line: key.path: message``
(:class:`monitor.errors.ConfigError`). ``tomllib`` gives values but no
positions, so :func:`_locate_keys` maps each key path to its line by a light
scan of the text; it handles tables, arrays of tables and ``key = value``
lines, which is all the configuration uses.

Discovery order (SPEC): ``--config PATH``, ``$NEWS_MONITOR_CONFIG``,
``./monitor.toml``, then :data:`DEFAULT_FEEDS` with the embedded defaults.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError, Problem
from monitor.models import Severity

CONFIG_ENV = "NEWS_MONITOR_CONFIG"

# A starter list for a Central Asia / energy / sanctions desk. Real outlets,
# English and Russian; operators replace it with their own `[[feeds]]`.
DEFAULT_FEEDS: tuple[tuple[str, str], ...] = (
    ("Eurasianet", "https://eurasianet.org/rss"),
    ("The Diplomat: Central Asia", "https://thediplomat.com/regions/central-asia/feed/"),
    ("The Times of Central Asia", "https://timesca.com/feed/"),
    ("The Astana Times", "https://astanatimes.com/feed/"),
    ("Novastan", "https://novastan.org/en/feed/"),
    ("Kursiv", "https://kz.kursiv.media/feed/"),
    ("Tengrinews", "https://tengrinews.kz/news.rss"),
    ("Trend News Agency", "https://en.trend.az/feeds/index.rss"),
    ("OilPrice.com", "https://oilprice.com/rss/main"),
    ("Meduza (English)", "https://meduza.io/rss/en/all"),
    ("Kommersant", "https://www.kommersant.ru/RSS/news.xml"),
    ("Interfax", "https://www.interfax.ru/rss.asp"),
    ("TASS (English)", "https://tass.com/rss/v2.xml"),
    ("BBC News: World", "https://feeds.bbci.co.uk/news/world/rss.xml"),
    ("The Guardian: World", "https://www.theguardian.com/world/rss"),
    ("Council of the EU: press releases",
     "https://www.consilium.europa.eu/en/rss/pressreleases.ashx"),
)

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SECURITY = ("none", "starttls", "tls")
_LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d`` or combined (``1h30m``) -> seconds.

    Raises ValueError for anything else (including zero-length input).
    """
    m = _DURATION_RE.match(text.strip().lower()) if isinstance(text, str) else None
    if not m or not any(m.groups()):
        raise ValueError(text)
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(d * 86400 + h * 3600 + mi * 60 + s)


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, for messages and ``status``."""
    rest = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    if rest or not out:
        out += f"{rest}s"
    return out


# -- cron ---------------------------------------------------------------------

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
                ("day_of_week", 0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                 "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                 "@annually": "0 0 1 1 *"}


def parse_cron(expr: str) -> dict[str, str]:
    """Validate a standard 5-field cron expression and return APScheduler fields.

    Standard cron counts weekdays from Sunday = 0 (7 is Sunday too), while
    APScheduler's ``CronTrigger`` counts from Monday = 0, so numeric weekdays
    are rewritten as names (``1-5`` -> ``mon-fri``), which both read alike.
    Raises ValueError with a message naming the bad field.
    """
    expr = _CRON_ALIASES.get(expr.strip().lower(), expr)
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"{expr!r} is not a cron expression: it needs 5 fields "
                         f"(minute hour day month weekday), it has {len(parts)}")
    out: dict[str, str] = {}
    for text, (name, lo, hi) in zip(parts, _CRON_FIELDS, strict=True):
        names = _MONTHS if name == "month" else _DAYS if name == "day_of_week" else ()
        base = 1 if name == "month" else 0

        def value(tok: str, name: str = name, lo: int = lo, hi: int = hi,
                  names: tuple[str, ...] = names, base: int = base) -> int:
            if tok.lower() in names:
                return names.index(tok.lower()) + base
            if not tok.isdigit() or not lo <= int(tok) <= hi:
                raise ValueError(f"cron field {name} {tok!r} is out of range {lo}-{hi}")
            return int(tok)

        converted = []
        for item in text.split(","):
            rng, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"cron field {name} has a bad step {step!r}")
            if rng == "*":
                va, vb = lo, (6 if name == "day_of_week" else hi)
            else:
                a, dash, b = rng.partition("-")
                va = value(a)
                vb = value(b) if dash else (hi if step else va)
                if vb < va:
                    raise ValueError(f"cron field {name} range {rng!r} runs backwards")
            if name == "day_of_week":
                # Spell weekdays out: no numbering to mistranslate, and "5-7"
                # (Friday to Sunday) needs no wrap-around in APScheduler.
                if rng == "*" and not step:
                    converted.append("*")
                    continue
                days = range(va, vb + 1, int(step or 1))
                converted.append(",".join(dict.fromkeys(_DAYS[d % 7] for d in days)))
            elif rng == "*":
                converted.append("*" + (f"/{step}" if step else ""))
            else:
                converted.append((str(va) if va == vb else f"{va}-{vb}")
                                 + (f"/{step}" if step else ""))
        out[name] = ",".join(converted)
    return out


# -- secrets ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    """A reference to a secret (``env:NAME`` or ``file:PATH``), never its value.

    ``repr`` and ``str`` show only the reference, so a secret cannot reach a
    log line or ``status`` by accident; :meth:`reveal` reads it when needed.
    """

    ref: str
    base: Path | None = None

    def reveal(self) -> str:
        kind, _, name = self.ref.partition(":")
        if kind == "env":
            value = os.environ.get(name)
            if value is None:
                raise ConfigError([Problem("<environment>", None, None,
                                           f"secret {self.ref}: variable {name} is not set")])
            return value
        path = Path(name)
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError([Problem(str(path), None, None,
                                       f"secret {self.ref}: {e.strerror}")]) from e

    def __str__(self) -> str:
        return self.ref


# -- the settings -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedConfig:
    url: str
    name: str | None = None
    interval: float | None = None  # seconds; None = poll.interval

    @property
    def label(self) -> str:
        return self.name or self.url


@dataclass(frozen=True, slots=True)
class PollConfig:
    interval: float = 900.0
    concurrency: int = 32
    per_host: int = 4
    timeout: float = 20.0
    max_bytes: int = 16 * 1024 * 1024
    max_redirects: int = 5
    max_backoff: float = 86400.0  # ceiling of the exponential back-off
    stale_after_failures: int = 5  # failures in a row before a feed is flagged


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    sender: str = "News Monitor <news-monitor@localhost>"
    username: str = ""
    password: Secret | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class DeskConfig:
    name: str
    rules: tuple[str, ...] = ("*",)
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    email: tuple[str, ...] = ()
    slack_webhook: Secret | None = None
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    alert_min_severity: Severity | None = None
    alert_channels: tuple[str, ...] | None = None  # None: every channel of the desk
    quiet_hours: tuple[time, time] | None = None
    send_empty: bool = False
    ops_notices: bool = False

    def wants(self, rule_id: str) -> bool:
        return "*" in self.rules or rule_id in self.rules

    @property
    def channels(self) -> tuple[str, ...]:
        out = []
        if self.email:
            out.append("email")
        if self.slack_webhook is not None:
            out.append("slack")
        if self.webhook_url:
            out.append("webhook")
        return tuple(out)

    @property
    def alerting_channels(self) -> tuple[str, ...]:
        """The channels immediate alerts go to (the digest goes to every channel)."""
        if self.alert_channels is None:
            return self.channels
        return tuple(c for c in self.channels if c in self.alert_channels)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the configuration says, with paths already resolved."""

    source: str  # the config file's path, or "<default>"
    storage_url: str
    rules_dir: Path
    storage_timeout: float = 30.0  # wait this long for a lock or a connection
    poll: PollConfig = field(default_factory=PollConfig)
    feeds: tuple[FeedConfig, ...] = ()
    smtp: SmtpConfig | None = None
    desks: tuple[DeskConfig, ...] = ()
    log_level: str = "info"
    retention_items: float | None = 180 * 86400.0
    metrics_listen: str | None = None
    templates_dir: Path | None = None

    def feed_interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.poll.interval

    def desk(self, name: str) -> DeskConfig | None:
        return next((d for d in self.desks if d.name == name), None)


# -- locating keys in the TOML text ------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


def _locate_keys(text: str) -> dict[str, int]:
    """Map key paths (``smtp.port``, ``feeds[3].interval``, ``desks[0]``) to lines."""
    lines: dict[str, int] = {}
    counters: dict[str, int] = {}
    prefix = ""
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            name = header.group(2).strip()
            if header.group(1) == "[[":
                index = counters.get(name, -1) + 1
                counters[name] = index
                prefix = f"{name}[{index}]"
            else:
                prefix = name
            lines.setdefault(prefix, number)
            continue
        key = _KEY_RE.match(line)
        if key:
            k = key.group(1).strip("\"'")
            lines.setdefault(f"{prefix}.{k}" if prefix else k, number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return lines


class _Reader:
    """Collects problems while typed values are read from the parsed TOML."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = _locate_keys(text) if text else {}
        self.problems: list[Problem] = []

    def line_of(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0] if "." in key else key.rpartition("[")[0]
        return None

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, self.line_of(key), None,
                                     f"{key}: {message}" if key else message))

    def known(self, table: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                self.problem(where, f"unknown key{_did_you_mean(name, allowed)}")

    def get(self, table: Mapping[str, Any], key: str, name: str, kind: type | tuple[type, ...],
            default: Any, what: str) -> Any:
        if name not in table:
            return default
        value = table[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            self.problem(f"{key}.{name}", f"{value!r} is not {what}")
            return default
        return value

    def duration(self, table: Mapping[str, Any], key: str, name: str,
                 default: float | None) -> float | None:
        value = self.get(table, key, name, str, None, "a duration such as 5m")
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.problem(f"{key}.{name}", f'"{value}" is not a duration such as 5m')
            return default
        if seconds <= 0:
            self.problem(f"{key}.{name}", f'"{value}" must be longer than 0s')
            return default
        return seconds

    def positive(self, table: Mapping[str, Any], key: str, name: str, default: int,
                 upper: int = 1_000_000) -> int:
        value = self.get(table, key, name, int, default, "an integer")
        if not 1 <= value <= upper:
            self.problem(f"{key}.{name}", f"{value} is out of range 1-{upper}")
            return default
        return int(value)

    def secret(self, table: Mapping[str, Any], key: str, name: str,
               base: Path) -> Secret | None:
        value = self.get(table, key, name, str, None, "a secret reference (env:NAME or file:PATH)")
        if not value:
            return None
        kind, sep, ref = value.partition(":")
        if not sep or kind not in ("env", "file") or not ref:
            self.problem(f"{key}.{name}", "secrets are given as env:NAME or file:PATH, "
                                          "never inline")
            return None
        if kind == "env" and ref not in os.environ:
            self.problem(f"{key}.{name}", f"environment variable {ref} is not set")
        if kind == "file":
            path = Path(ref) if Path(ref).is_absolute() else base / ref
            if not path.is_file():
                self.problem(f"{key}.{name}", f"secret file {path} does not exist")
        return Secret(value, base)


_TOP = ("storage", "rules", "poll", "feeds", "smtp", "desks", "log", "retention", "metrics",
        "templates")


def load_settings(path: Path | str | None = None, *,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Find and load the configuration (see module docstring). Raises ConfigError."""
    env = os.environ if environ is None else environ
    if path is None:
        if env.get(CONFIG_ENV):
            path = env[CONFIG_ENV]
        elif Path("monitor.toml").is_file():
            path = "monitor.toml"
    if path is None:
        return default_settings(env)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(str(path), None, None, f"cannot read: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(str(path), None, None, "is not UTF-8 text")]) from e
    return parse_settings(text, str(path), base=path.resolve().parent)


def default_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The embedded default: shipped rules, SQLite in ``state/``, the starter feeds.

    Under systemd, ``$STATE_DIRECTORY`` and ``$CONFIGURATION_DIRECTORY`` take
    the place of the current folder.
    """
    env = os.environ if environ is None else environ
    state = Path(env["STATE_DIRECTORY"].split(":")[0]) if env.get("STATE_DIRECTORY") \
        else Path("state")
    confdir = Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) \
        if env.get("CONFIGURATION_DIRECTORY") else Path(".")
    rules = confdir / "rules"
    if not rules.is_dir():
        rules = shipped_rules_dir()
    return Settings(
        source="<default>",
        storage_url=f"sqlite:///{(state / 'monitor.db').absolute()}",
        rules_dir=rules.absolute(),
        feeds=tuple(FeedConfig(url=url, name=name) for name, url in DEFAULT_FEEDS),
    )


def shipped_rules_dir() -> Path:
    """The rules that ship with the package (in a checkout: the repository's rules/)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "rules", here / "shipped_rules"):
        if candidate.is_dir():
            return candidate
    return here.parent / "rules"


def parse_settings(text: str, source: str, *, base: Path) -> Settings:
    """Parse configuration text; relative paths resolve against ``base``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        if msg.startswith("Cannot overwrite a value") or msg.startswith("Cannot declare"):
            msg += " (a key or table is given twice)"
        raise ConfigError([Problem(source, line, col, f"invalid TOML: {msg}")]) from e
    r = _Reader(source, text)
    r.known(data, "", _TOP)

    def table(name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            r.problem(name, "must be a table ([" + name + "])")
            return {}
        return value

    storage = table("storage")
    r.known(storage, "storage", ("url", "timeout"))
    storage_timeout = r.duration(storage, "storage", "timeout", 30.0) or 30.0
    url = r.get(storage, "storage", "url", str, "sqlite:///state/monitor.db", "a database URL")
    storage_url = _resolve_sqlite(url, base)
    if not re.match(r"^[a-z][a-z0-9+]*://", storage_url):
        r.problem("storage.url", f"{url!r} is not a database URL such as sqlite:///state/monitor.db")

    rules_t = table("rules")
    r.known(rules_t, "rules", ("dir",))
    rules_dir = base / r.get(rules_t, "rules", "dir", str, "rules", "a folder path")
    if "dir" not in rules_t and not rules_dir.is_dir():
        rules_dir = shipped_rules_dir()  # no rules of its own: the shipped ones
    if not rules_dir.is_dir():
        r.problem("rules.dir", f"folder {rules_dir} does not exist")

    poll_t = table("poll")
    poll_keys = ("interval", "concurrency", "per_host", "timeout", "max_bytes", "max_redirects",
                 "max_backoff", "stale_after_failures")
    r.known(poll_t, "poll", poll_keys)
    d = PollConfig()
    poll = PollConfig(
        interval=r.duration(poll_t, "poll", "interval", d.interval) or d.interval,
        concurrency=r.positive(poll_t, "poll", "concurrency", d.concurrency, 1024),
        per_host=r.positive(poll_t, "poll", "per_host", d.per_host, 1024),
        timeout=r.duration(poll_t, "poll", "timeout", d.timeout) or d.timeout,
        max_bytes=r.positive(poll_t, "poll", "max_bytes", d.max_bytes, 1 << 31),
        max_redirects=r.positive(poll_t, "poll", "max_redirects", d.max_redirects, 50),
        max_backoff=r.duration(poll_t, "poll", "max_backoff", d.max_backoff) or d.max_backoff,
        stale_after_failures=r.positive(poll_t, "poll", "stale_after_failures",
                                        d.stale_after_failures, 1000),
    )

    feeds: list[FeedConfig] = []
    seen_urls: dict[str, int] = {}
    raw_feeds = data.get("feeds", [])
    if not isinstance(raw_feeds, list):
        r.problem("feeds", "must be an array of tables ([[feeds]])")
        raw_feeds = []
    for i, f in enumerate(raw_feeds):
        key = f"feeds[{i}]"
        if not isinstance(f, dict):
            r.problem(key, "must be a table")
            continue
        r.known(f, key, ("url", "name", "interval"))
        furl = r.get(f, key, "url", str, None, "a URL or a file path")
        if not furl:
            r.problem(key, "url is required")
            continue
        furl = resolve_feed_url(furl, base)
        if furl in seen_urls:
            r.problem(f"{key}.url", f"duplicate of feeds[{seen_urls[furl]}]")
        seen_urls[furl] = i
        feeds.append(FeedConfig(url=furl, name=r.get(f, key, "name", str, None, "a string"),
                                interval=r.duration(f, key, "interval", None)))

    smtp: SmtpConfig | None = None
    if "smtp" in data:
        s = table("smtp")
        r.known(s, "smtp", ("host", "port", "security", "sender", "username", "password",
                            "timeout"))
        sd = SmtpConfig()
        security = r.get(s, "smtp", "security", str, sd.security, "a string")
        if security not in _SECURITY:
            r.problem("smtp.security", f"{security!r} is not one of none, starttls, tls")
            security = sd.security
        smtp = SmtpConfig(
            host=r.get(s, "smtp", "host", str, sd.host, "a host name"),
            port=r.positive(s, "smtp", "port", sd.port, 65535),
            security=security,
            sender=r.get(s, "smtp", "sender", str, sd.sender, "an address"),
            username=r.get(s, "smtp", "username", str, sd.username, "a string"),
            password=r.secret(s, "smtp", "password", base),
            timeout=r.duration(s, "smtp", "timeout", sd.timeout) or sd.timeout,
        )

    desks = _read_desks(r, data, base)
    for i, desk in enumerate(desks):
        if desk.email and smtp is None:
            r.problem(f"desks[{i}].email", "a desk with email needs an [smtp] table")

    log_t = table("log")
    r.known(log_t, "log", ("level",))
    level = r.get(log_t, "log", "level", str, "info", "a string").lower()
    if level not in _LOG_LEVELS:
        r.problem("log.level", f"{level!r} is not one of {', '.join(_LOG_LEVELS)}")
        level = "info"

    ret_t = table("retention")
    r.known(ret_t, "retention", ("items",))
    retention: float | None = 180 * 86400.0
    if ret_t.get("items") in ("forever", "never"):
        retention = None
    else:
        retention = r.duration(ret_t, "retention", "items", retention)

    met_t = table("metrics")
    r.known(met_t, "metrics", ("listen",))
    listen = r.get(met_t, "metrics", "listen", str, None, "an address such as 127.0.0.1:9464")
    if listen and not re.match(r"^[\w.\-\[\]:]+:\d{1,5}$", listen):
        r.problem("metrics.listen", f"{listen!r} is not an address such as 127.0.0.1:9464")

    tpl_t = table("templates")
    r.known(tpl_t, "templates", ("dir",))
    tpl = r.get(tpl_t, "templates", "dir", str, None, "a folder path")
    templates_dir = base / tpl if tpl else None
    if templates_dir is not None and not templates_dir.is_dir():
        r.problem("templates.dir", f"folder {templates_dir} does not exist")

    if r.problems:
        raise ConfigError(r.problems)
    return Settings(source=source, storage_url=storage_url, storage_timeout=storage_timeout,
                    rules_dir=rules_dir, poll=poll,
                    feeds=tuple(feeds), smtp=smtp, desks=tuple(desks), log_level=level,
                    retention_items=retention, metrics_listen=listen,
                    templates_dir=templates_dir)


def _read_desks(r: _Reader, data: Mapping[str, Any], base: Path) -> list[DeskConfig]:
    raw = data.get("desks", [])
    if not isinstance(raw, list):
        r.problem("desks", "must be an array of tables ([[desks]])")
        return []
    desks: list[DeskConfig] = []
    names: set[str] = set()
    keys = ("name", "rules", "schedule", "timezone", "email", "slack_webhook", "webhook_url",
            "webhook_secret", "alert_min_severity", "alert_channels", "quiet_hours",
            "send_empty", "ops_notices")
    for i, t in enumerate(raw):
        key = f"desks[{i}]"
        if not isinstance(t, dict):
            r.problem(key, "must be a table")
            continue
        r.known(t, key, keys)
        name = r.get(t, key, "name", str, "", "a string")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", name):
            r.problem(f"{key}.name" if name else key,
                      "a desk needs a name of letters, digits, '-', '_' or '.'")
            continue
        if name in names:
            r.problem(f"{key}.name", f"duplicate desk name {name!r}")
        names.add(name)
        rules = _str_list(r, t, key, "rules", ["*"])
        schedule = r.get(t, key, "schedule", str, "0 7 * * *", "a cron expression")
        try:
            parse_cron(schedule)
        except ValueError as e:
            r.problem(f"{key}.schedule", str(e))
        tz = r.get(t, key, "timezone", str, "UTC", "a time zone name")
        if not _valid_timezone(tz):
            r.problem(f"{key}.timezone", f"unknown time zone {tz!r} (use a name such as "
                                         "Asia/Almaty)")
        emails = _str_list(r, t, key, "email", [])
        for addr in emails:
            if not re.match(r"^[^@\s<>]+@[^@\s<>]+$", addr):
                r.problem(f"{key}.email", f"{addr!r} is not an email address")
        sev_text = r.get(t, key, "alert_min_severity", str, None, "a severity")
        severity = None
        if sev_text is not None:
            try:
                severity = Severity.parse(sev_text)
            except KeyError:
                r.problem(f"{key}.alert_min_severity",
                          f"{sev_text!r} is not one of low, medium, high, critical")
        quiet = None
        qtext = r.get(t, key, "quiet_hours", str, None, "a range such as 22:00-07:00")
        if qtext is not None:
            qm = re.match(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$", qtext)
            if qm and int(qm[1]) < 24 and int(qm[3]) < 24 and int(qm[2]) < 60 \
                    and int(qm[4]) < 60:
                quiet = (time(int(qm[1]), int(qm[2])), time(int(qm[3]), int(qm[4])))
            else:
                r.problem(f"{key}.quiet_hours", f"{qtext!r} is not a range such as 22:00-07:00")
        webhook_url = r.get(t, key, "webhook_url", str, None, "a URL")
        if webhook_url and not re.match(r"^https?://", webhook_url):
            r.problem(f"{key}.webhook_url", f"{webhook_url!r} is not an http(s) URL")
        desk = DeskConfig(
            name=name, rules=tuple(rules), schedule=schedule, timezone=tz, email=tuple(emails),
            slack_webhook=r.secret(t, key, "slack_webhook", base), webhook_url=webhook_url,
            webhook_secret=r.secret(t, key, "webhook_secret", base),
            alert_min_severity=severity, quiet_hours=quiet,
            send_empty=r.get(t, key, "send_empty", bool, False, "true or false"),
            ops_notices=r.get(t, key, "ops_notices", bool, False, "true or false"),
        )
        if "alert_channels" in t:
            desk = replace(desk, alert_channels=_alert_channels(r, t, key, desk))
        desks.append(desk)
    return desks


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _alert_channels(r: _Reader, t: Mapping[str, Any], key: str,
                    desk: DeskConfig) -> tuple[str, ...]:
    """``alert_channels``: some of the desk's own channels (say Slack for alerts,
    email for the digest)."""
    where = f"{key}.alert_channels"
    chosen = _str_list(r, t, key, "alert_channels", [])
    if desk.alert_min_severity is None:
        r.problem(where, "has no effect without alert_min_severity (which hits to alert)")
    for channel in chosen:
        if channel not in desk.channels:
            hint = _did_you_mean(channel, desk.channels) or \
                f" (its channels: {', '.join(desk.channels) or 'none'})"
            r.problem(where, f"{channel!r} is not a channel of this desk{hint}")
    return tuple(chosen)


def _str_list(r: _Reader, t: Mapping[str, Any], key: str, name: str,
              default: list[str]) -> list[str]:
    value = t.get(name, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(f"{key}.{name}", f"{value!r} is not a list of strings")
        return default
    return value


def _valid_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _resolve_sqlite(url: str, base: Path) -> str:
    """Make a relative SQLite path absolute against the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix \
            and ":memory:" not in url:
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


def resolve_feed_url(url: str, base: Path) -> str:
    """http(s) URLs stay as they are; a relative file path resolves against ``base``."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://", url):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def validate_desk_rules(settings: Settings, rule_ids: set[str],
                        on_problem: Callable[[Problem], None]) -> None:
    """Report desks that name rules that do not exist (needs the loaded rules)."""
    lines = {}
    if settings.source != "<default>":
        try:
            lines = _locate_keys(Path(settings.source).read_text(encoding="utf-8"))
        except OSError:
            lines = {}
    for i, desk in enumerate(settings.desks):
        for rule in desk.rules:
            if rule != "*" and rule not in rule_ids:
                key = f"desks[{i}].rules"
                on_problem(Problem(settings.source, lines.get(key, lines.get(f"desks[{i}]")),
                                   None, f"{key}: unknown rule {rule!r}"
                                         f"{_did_you_mean(rule, sorted(rule_ids))}"))
