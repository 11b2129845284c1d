"""The configuration: a TOML file (or the embedded default) -> frozen, typed settings.

Every key is declared once, as a :class:`Key` (its name, its parser, which
validates and converts, whether it holds a secret, a line of help) in the
table that holds it; the dataclass the table builds (:class:`PollConfig`...)
carries the defaults. One generic reader (:meth:`_Reader.read`) applies the
declarations: unknown keys with a "did you mean", a parser's refusal as
``file:line: key.path: message`` (:class:`monitor.errors.ConfigError`), every
problem reported at once. ``tomllib`` gives values but no positions, so
:func:`_locate_keys` maps each key path to its line by a light scan of the text.

Channels (``monitor.channels``, one module each) sit above this module and
declare their own keys with the same :class:`Key` records: per-desk keys and,
if they need one, a top-level table of their own. The reader knows them only
as :class:`ChannelConfig` values handed to :func:`parse_settings` /
:func:`load_settings` (``channels=``); :mod:`monitor.config` is what the
program calls, with the registry's channels filled in. So this module names no
channel, and adding one does not touch it.

Discovery order (SPEC): ``--config PATH``, ``$NEWS_MONITOR_CONFIG``,
``./monitor.toml``, then :data:`DEFAULT_FEEDS` with the embedded defaults.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Protocol

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


# -- declaring keys -------------------------------------------------------------


class Invalid(ValueError):
    """A parser's refusal; its text follows ``file:line: key.path: `` in the report."""


#: A key's parser: the TOML value and the config file's folder -> the typed value.
#: Raises :class:`Invalid`.
Parser = Callable[[Any, Path], Any]


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key, declared once: read by :meth:`_Reader.read`.

    An absent key is left out of what the reader returns, so the dataclass the
    table builds supplies the default; ``required`` keys are reported missing
    instead. ``field`` names the dataclass field when it differs from the key.
    """

    name: str
    parse: Parser
    help: str = ""
    secret: bool = False  # holds a reference to a secret (env:NAME, file:PATH)
    required: bool = False
    field: str = ""

    @property
    def target(self) -> str:
        return self.field or self.name


@dataclass(frozen=True, slots=True)
class Table:
    """A top-level table: its keys and the frozen value it builds from them."""

    name: str
    keys: tuple[Key, ...]
    build: Callable[..., Any]  # called with the given keys' values as keyword arguments


class ChannelConfig(Protocol):
    """What the reader needs of a channel (``monitor.channels.base.ChannelSpec``)."""

    @property
    def name(self) -> str: ...

    @property
    def desk_keys(self) -> tuple[Key, ...]:
        """The channel's keys in a ``[[desks]]`` table."""
        ...

    @property
    def table(self) -> Table | None:
        """A top-level table the channel owns, or None."""
        ...

    def desk_options(self, values: Mapping[str, Any]) -> object | None:
        """The desk's given channel keys -> the channel's options; None: not used."""
        ...

    def check(self, options: object, table: object | None) -> Iterable[tuple[str, str]]:
        """Cross-checks on a desk using the channel: (desk key, message) problems."""
        ...


# Parsers. Each factory returns a Parser; the messages are the operator's.

def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not {what}")
    return value


def text(what: str = "a string", check: Callable[[str], str | None] | None = None
         ) -> Parser:
    """A string; ``check`` returns a problem's message, or None when the value is fine."""
    def parse(value: Any, base: Path) -> str:
        given = _string(value, what)
        problem = check(given) if check is not None else None
        if problem:
            raise Invalid(problem)
        return given
    return parse


def integer(upper: int, lower: int = 1) -> Parser:
    def parse(value: Any, base: Path) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{value!r} is not an integer")
        if not lower <= value <= upper:
            raise Invalid(f"{value} is out of range {lower}-{upper}")
        return value
    return parse


def boolean(value: Any, base: Path) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{value!r} is not true or false")
    return value


def duration(value: Any, base: Path) -> float:
    """``"5m"`` -> 300.0: a positive duration (:func:`parse_duration`)."""
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not a duration such as 5m")
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise Invalid(f'"{value}" is not a duration such as 5m') from None
    if seconds <= 0:
        raise Invalid(f'"{value}" must be longer than 0s')
    return seconds


def one_of(*choices: str, fold: bool = False) -> Parser:
    """One of ``choices`` (compared in lower case when ``fold``)."""
    def parse(value: Any, base: Path) -> str:
        given = _string(value, "a string")
        given = given.lower() if fold else given
        if given not in choices:
            raise Invalid(f"{given!r} is not one of {', '.join(choices)}")
        return given
    return parse


def str_list(check: Callable[[str], str | None] | None = None) -> Parser:
    """A list of strings (a lone string is a list of one), as a tuple."""
    def parse(value: Any, base: Path) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Invalid(f"{value!r} is not a list of strings")
        for v in value:
            problem = check(v) if check is not None else None
            if problem:
                raise Invalid(problem)
        return tuple(value)
    return parse


def folder(value: Any, base: Path) -> Path:
    """A folder that exists, relative to the config file's."""
    path = base / _string(value, "a folder path")
    if not path.is_dir():
        raise Invalid(f"folder {path} does not exist")
    return path


def secret(value: Any, base: Path) -> Secret | None:
    """A :class:`Secret` reference (``env:NAME``, ``file:PATH``), checked but not read."""
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not a secret reference (env:NAME or file:PATH)")
    if not value:
        return None
    kind, sep, ref = value.partition(":")
    if not sep or kind not in ("env", "file") or not ref:
        raise Invalid("secrets are given as env:NAME or file:PATH, never inline")
    if kind == "env" and ref not in os.environ:
        raise Invalid(f"environment variable {ref} is not set")
    if kind == "file":
        path = Path(ref) if Path(ref).is_absolute() else base / ref
        if not path.is_file():
            raise Invalid(f"secret file {path} does not exist")
    return Secret(value, base)


def http_url(value: Any, base: Path) -> str:
    url = _string(value, "a URL")
    if url and not re.match(r"^https?://", url):
        raise Invalid(f"{url!r} is not an http(s) URL")
    return url


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
class DeskConfig:
    """A desk: which rules it follows, when its digest goes, and its channels.

    ``channel_options`` maps each channel the desk uses to that channel's own
    frozen options (``monitor.channels``), in the registry's order.
    """

    name: str
    rules: tuple[str, ...] = ("*",)
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    alert_min_severity: Severity | None = None
    alert_channels: tuple[str, ...] | None = None  # None: every channel of the desk
    quiet_hours: tuple[time, time] | None = None
    send_empty: bool = False
    ops_notices: bool = False
    channel_options: Mapping[str, object] = field(default_factory=dict)

    def wants(self, rule_id: str) -> bool:
        return "*" in self.rules or rule_id in self.rules

    @property
    def channels(self) -> tuple[str, ...]:
        """The names of the channels the desk is sent to."""
        return tuple(self.channel_options)

    @property
    def alerting_channels(self) -> tuple[str, ...]:
        """The channels immediate alerts go to (the digest goes to every channel)."""
        if self.alert_channels is None:
            return self.channels
        return tuple(c for c in self.channels if c in self.alert_channels)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the configuration says, with paths already resolved.

    ``channel_tables`` holds the channels' own top-level tables (their built
    values), by table name, for those the file has.
    """

    source: str  # the config file's path, or "<default>"
    storage_url: str
    rules_dir: Path
    storage_timeout: float = 30.0  # wait this long for a lock or a connection
    poll: PollConfig = field(default_factory=PollConfig)
    feeds: tuple[FeedConfig, ...] = ()
    desks: tuple[DeskConfig, ...] = ()
    log_level: str = "info"
    retention_items: float | None = 180 * 86400.0
    metrics_listen: str | None = None
    templates_dir: Path | None = None
    channel_tables: Mapping[str, object] = field(default_factory=dict)

    def feed_interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.poll.interval

    def desk(self, name: str) -> DeskConfig | None:
        return next((d for d in self.desks if d.name == name), None)


# -- the declarations -----------------------------------------------------------

_DEFAULT_STORAGE = "sqlite:///state/monitor.db"


def _storage_url(value: Any, base: Path) -> str:
    url = _string(value, "a database URL")
    resolved = _resolve_sqlite(url, base)
    if not re.match(r"^[a-z][a-z0-9+]*://", resolved):
        raise Invalid(f"{url!r} is not a database URL such as sqlite:///state/monitor.db")
    return resolved


def _retention(value: Any, base: Path) -> float | None:
    return None if value in ("forever", "never") else duration(value, base)


def _listen(value: str) -> str | None:
    if value and not re.match(r"^[\w.\-\[\]:]+:\d{1,5}$", value):
        return f"{value!r} is not an address such as 127.0.0.1:9464"
    return None


def _templates(value: Any, base: Path) -> Path | None:
    return folder(value, base) if _string(value, "a folder path") else None


# Top-level tables whose keys are fields of Settings itself (table, its keys).
_FLAT: tuple[tuple[str, tuple[Key, ...]], ...] = (
    ("storage", (
        Key("url", _storage_url, "the database: sqlite:///PATH or postgresql://...",
            field="storage_url"),
        Key("timeout", duration, "wait this long for a lock or a connection",
            field="storage_timeout"),
    )),
    ("rules", (Key("dir", folder, "the folder of rule files", field="rules_dir"),)),
    ("log", (Key("level", one_of("debug", "info", "warning", "error", fold=True),
                 field="log_level"),)),
    ("retention", (Key("items", _retention, "how long items are kept, or forever",
                       field="retention_items"),)),
    ("metrics", (Key("listen", text("an address such as 127.0.0.1:9464", _listen),
                     "serve Prometheus metrics on HOST:PORT", field="metrics_listen"),)),
    ("templates", (Key("dir", _templates, "templates overriding the shipped ones",
                       field="templates_dir"),)),
)

POLL = Table("poll", (
    Key("interval", duration, "how often each feed is polled"),
    Key("concurrency", integer(1024), "feeds fetched at once"),
    Key("per_host", integer(1024), "feeds fetched at once from one host"),
    Key("timeout", duration, "per request"),
    Key("max_bytes", integer(1 << 31), "a bigger response is cut off"),
    Key("max_redirects", integer(50)),
    Key("max_backoff", duration, "ceiling of a failing feed's back-off"),
    Key("stale_after_failures", integer(1000), "failures in a row before a feed is flagged"),
), PollConfig)

FEED_KEYS: tuple[Key, ...] = (
    Key("url", lambda v, base: resolve_feed_url(text("a URL or a file path")(v, base), base),
        "http(s) URL, or a file path relative to the config file", required=True),
    Key("name", text()),
    Key("interval", duration, "instead of poll.interval"),
)


def _schedule(value: str) -> str | None:
    try:
        parse_cron(value)
    except ValueError as e:
        return str(e)
    return None


def _timezone(value: str) -> str | None:
    if _valid_timezone(value):
        return None
    return f"unknown time zone {value!r} (use a name such as Asia/Almaty)"


def _severity(value: Any, base: Path) -> Severity:
    name = _string(value, "a severity")
    try:
        return Severity.parse(name)
    except KeyError:
        raise Invalid(f"{name!r} is not one of low, medium, high, critical") from None


def _quiet_hours(value: Any, base: Path) -> tuple[time, time]:
    qtext = _string(value, "a range such as 22:00-07:00")
    qm = re.match(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$", qtext)
    if qm and int(qm[1]) < 24 and int(qm[3]) < 24 and int(qm[2]) < 60 and int(qm[4]) < 60:
        return (time(int(qm[1]), int(qm[2])), time(int(qm[3]), int(qm[4])))
    raise Invalid(f"{qtext!r} is not a range such as 22:00-07:00")


_DESK_NAME = Key("name", text(), "letters, digits, '-', '_' or '.'")
#: A desk's own keys; its channels' keys come from the channels.
DESK_KEYS: tuple[Key, ...] = (
    Key("rules", str_list(), 'rule ids, or "*" for all'),
    Key("schedule", text("a cron expression", _schedule), "when the digest goes (cron)"),
    Key("timezone", text("a time zone name", _timezone), "for the schedule and times shown"),
    Key("alert_min_severity", _severity, "hits at or above it are alerted at once"),
    Key("alert_channels", str_list(), "the desk's channels alerts go to (default: all)"),
    Key("quiet_hours", _quiet_hours, "no alerts then, desk-local: 22:00-07:00"),
    Key("send_empty", boolean, "send a digest when nothing matched"),
    Key("ops_notices", boolean, "operator notices (a feed failing for days...)"),
)


# -- locating keys in the TOML text ------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


def _locate_keys(text: str) -> dict[str, int]:
    """Map key paths (``poll.timeout``, ``feeds[3].interval``, ``desks[0]``) to lines."""
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
    """Collects problems while the declared keys are read from the parsed TOML."""

    def __init__(self, path: str, text: str, base: Path) -> None:
        self.path = path
        self.base = base
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

    def known(self, table: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                self.problem(where, f"unknown key{_did_you_mean(name, allowed)}")

    def read(self, table: Mapping[str, Any], where: str, keys: Iterable[Key]
             ) -> dict[str, Any]:
        """The given keys' parsed values by field name; absent and refused keys left out."""
        out: dict[str, Any] = {}
        for k in keys:
            if k.name not in table or (k.required and table[k.name] == ""):
                if k.required:
                    self.problem(where, f"{k.name} is required")
                continue
            try:
                out[k.target] = k.parse(table[k.name], self.base)
            except Invalid as e:
                self.problem(f"{where}.{k.name}", str(e))
        return out

    def table(self, data: Mapping[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"must be a table ([{name}])")
            return {}
        return value

    def array(self, data: Mapping[str, Any], name: str) -> list[Any]:
        value = data.get(name, [])
        if not isinstance(value, list):
            self.problem(name, f"must be an array of tables ([[{name}]])")
            return []
        return value


def load_settings(path: Path | str | None, *, channels: Callable[[], Sequence[ChannelConfig]],
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
    return parse_settings(text, str(path), base=path.resolve().parent, channels=channels)


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
        rules = _shipped_rules()
    return Settings(
        source="<default>",
        storage_url=f"sqlite:///{(state / 'monitor.db').absolute()}",
        rules_dir=rules.absolute(),
        feeds=tuple(FeedConfig(url=url, name=name) for name, url in DEFAULT_FEEDS),
    )


def _shipped_rules() -> Path:
    # Imported here: the rules module (and its stemmer) is not needed to start a poll.
    from monitor.rules import shipped_rules_dir

    return shipped_rules_dir()


def parse_settings(text: str, source: str, *, base: Path,
                   channels: Callable[[], Sequence[ChannelConfig]]) -> Settings:
    """Parse configuration text; relative paths resolve against ``base``.

    ``channels()`` gives the channels whose keys desks may use (the registry's,
    ``monitor.channels.SPECS``; :mod:`monitor.config` passes them). It is called
    only when the file has desks or tables not of this module's, so that a
    configuration of feeds alone (a poll's, a benchmark's) loads no channel.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        if msg.startswith("Cannot overwrite a value") or msg.startswith("Cannot declare"):
            msg += " (a key or table is given twice)"
        raise ConfigError([Problem(source, line, col, f"invalid TOML: {msg}")]) from e
    r = _Reader(source, text, base)
    own = ("storage", "rules", "poll", "feeds", "desks", "log", "retention", "metrics",
           "templates")
    specs = channels() if "desks" in data or any(k not in own for k in data) else ()
    tables = [c.table for c in specs if c.table is not None]
    r.known(data, "", [*own[:4], *(t.name for t in tables), *own[4:]])

    flat: dict[str, Any] = {}
    for name, keys in _FLAT[:2]:  # storage, rules
        t = r.table(data, name)
        r.known(t, name, [k.name for k in keys])
        flat.update(r.read(t, name, keys))
    flat.setdefault("storage_url", _resolve_sqlite(_DEFAULT_STORAGE, base))
    rules_t = data.get("rules")
    if not (isinstance(rules_t, dict) and "dir" in rules_t):
        rules_dir = base / "rules"  # no rules of its own: the shipped ones
        flat["rules_dir"] = rules_dir if rules_dir.is_dir() else _shipped_rules()
        if not flat["rules_dir"].is_dir():
            r.problem("rules.dir", f"folder {flat['rules_dir']} does not exist")

    poll_t = r.table(data, POLL.name)
    r.known(poll_t, POLL.name, [k.name for k in POLL.keys])
    poll = POLL.build(**r.read(poll_t, POLL.name, POLL.keys))

    feeds = _read_feeds(r, data)

    channel_tables: dict[str, object] = {}
    for owned in tables:
        if owned.name in data:
            raw = r.table(data, owned.name)
            r.known(raw, owned.name, [k.name for k in owned.keys])
            channel_tables[owned.name] = owned.build(**r.read(raw, owned.name, owned.keys))

    desks = _read_desks(r, data, specs, channel_tables)

    for name, keys in _FLAT[2:]:  # log, retention, metrics, templates
        t = r.table(data, name)
        r.known(t, name, [k.name for k in keys])
        flat.update(r.read(t, name, keys))

    if r.problems:
        raise ConfigError(r.problems)
    return Settings(source=source, poll=poll, feeds=tuple(feeds), desks=tuple(desks),
                    channel_tables=channel_tables, **flat)


def _read_feeds(r: _Reader, data: Mapping[str, Any]) -> list[FeedConfig]:
    feeds: list[FeedConfig] = []
    seen_urls: dict[str, int] = {}
    for i, f in enumerate(r.array(data, "feeds")):
        key = f"feeds[{i}]"
        if not isinstance(f, dict):
            r.problem(key, "must be a table")
            continue
        r.known(f, key, [k.name for k in FEED_KEYS])
        values = r.read(f, key, FEED_KEYS)
        url = values.get("url")
        if url is None:
            continue
        if url in seen_urls:
            r.problem(f"{key}.url", f"duplicate of feeds[{seen_urls[url]}]")
        seen_urls[url] = i
        feeds.append(FeedConfig(**values))
    return feeds


def _read_desks(r: _Reader, data: Mapping[str, Any], channels: Sequence[ChannelConfig],
                channel_tables: Mapping[str, object]) -> list[DeskConfig]:
    desks: list[DeskConfig] = []
    names: set[str] = set()
    allowed = [_DESK_NAME.name, *(k.name for k in DESK_KEYS),
               *(k.name for c in channels for k in c.desk_keys)]
    checks: list[tuple[str, ChannelConfig, object]] = []
    for i, t in enumerate(r.array(data, "desks")):
        key = f"desks[{i}]"
        if not isinstance(t, dict):
            r.problem(key, "must be a table")
            continue
        r.known(t, key, allowed)
        name = r.read(t, key, (_DESK_NAME,)).get("name", "")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", name):
            r.problem(f"{key}.name" if name else key,
                      "a desk needs a name of letters, digits, '-', '_' or '.'")
            continue
        if name in names:
            r.problem(f"{key}.name", f"duplicate desk name {name!r}")
        names.add(name)
        values = r.read(t, key, DESK_KEYS)
        options: dict[str, object] = {}
        for channel in channels:
            chosen = channel.desk_options(r.read(t, key, channel.desk_keys))
            if chosen is not None:
                options[channel.name] = chosen
                checks.append((key, channel, chosen))
        desk = DeskConfig(name=name, channel_options=options, **values)
        if "alert_channels" in t:
            _check_alert_channels(r, key, desk)
        desks.append(desk)
    for key, channel, chosen in checks:
        table = channel.table
        for desk_key, message in channel.check(
                chosen, None if table is None else channel_tables.get(table.name)):
            r.problem(f"{key}.{desk_key}", message)
    return desks


def _check_alert_channels(r: _Reader, key: str, desk: DeskConfig) -> None:
    """``alert_channels``: some of the desk's own channels (one for alerts, all of
    them for the digest)."""
    where = f"{key}.alert_channels"
    if desk.alert_min_severity is None:
        r.problem(where, "has no effect without alert_min_severity (which hits to alert)")
    for channel in desk.alert_channels or ():
        if channel not in desk.channels:
            hint = _did_you_mean(channel, desk.channels) or \
                f" (its channels: {', '.join(desk.channels) or 'none'})"
            r.problem(where, f"{channel!r} is not a channel of this desk{hint}")


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
