"""The configuration: a TOML file (or the embedded default) -> frozen, typed settings.

Every key is declared once, as a :class:`~monitor.config_keys.Key` (its name,
its parser, which validates and converts, whether it holds a secret, a line
of help) in the table that holds it; the dataclass the table builds
(:class:`PollConfig`...) carries the defaults. One generic reader
(:class:`monitor.config_keys.Reader`) applies the declarations: unknown keys
with a "did you mean", a parser's refusal as ``file:line: key.path: message``
(:class:`monitor.errors.ConfigError`), every problem reported at once.

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

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from monitor.config_keys import (
    ChannelConfig,
    Invalid,
    Key,
    Reader,
    SecretUse,
    Table,
    boolean,
    did_you_mean,
    duration,
    folder,
    http_url,
    integer,
    locate_keys,
    one_of,
    str_list,
    string,
    text,
)
from monitor.errors import ConfigError, Problem
from monitor.models import Severity
from monitor.timespec import parse_cron

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


# -- the settings -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedConfig:
    url: str
    name: str | None = None
    interval: float | None = None  # seconds; None = poll.interval
    kind: str = "feed"  # feed | telegram (a channel's web preview, t.me/s/NAME)
    # fetch each new item's article page: True, False, or "topic" (only items whose
    # headline names a rule's topic without a hit); None = poll.full_text
    full_text: bool | str | None = None

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
    full_text: bool | str = False  # every feed's default (FeedConfig.full_text)


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
    def rule_ids(self) -> list[str] | None:
        """The rules whose hits the desk gets, as the store filters them (None: all)."""
        return None if "*" in self.rules else list(self.rules)

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
    log_format: str = "text"  # "json": one JSON object a line, for log shippers
    retention_items: float | None = 180 * 86400.0
    metrics_listen: str | None = None
    #: the web view (issue 17): where it listens, the public address digests link
    #: stories to, and the file of hashed passwords that turns HTTP basic auth on
    web_listen: str | None = None
    web_base_url: str | None = None
    web_passwords: Path | None = None
    #: the HTTP channels' wait for an answer once a request is sent, in all
    delivery_timeout: float = 15.0
    templates_dir: Path | None = None
    channel_tables: Mapping[str, object] = field(default_factory=dict)
    #: every secret the file names, as references (none is read to load the file)
    secrets: tuple[SecretUse, ...] = ()

    def feed_interval(self, feed: FeedConfig) -> float:
        return feed.interval if feed.interval is not None else self.poll.interval

    def feed_full_text(self, feed: FeedConfig) -> str:
        """``off``, ``all`` (every new item's page) or ``topic`` (only items whose
        headline names a rule's topic without a hit). A Telegram channel's posts
        are their own text (their links lead to t.me): ``off`` unless it says so."""
        value = feed.full_text if feed.full_text is not None else (
            False if feed.kind == "telegram" else self.poll.full_text)
        return "topic" if value == "topic" else "all" if value is True else "off"

    def desk(self, name: str) -> DeskConfig | None:
        return next((d for d in self.desks if d.name == name), None)


# -- the declarations -----------------------------------------------------------

_DEFAULT_STORAGE = "sqlite:///state/monitor.db"


#: The storage URL schemes the store supports -> the module each needs.
STORAGE_DRIVERS: Mapping[str, str] = {
    "sqlite": "sqlite3", "sqlite+pysqlite": "sqlite3",
    "postgresql": "psycopg", "postgresql+psycopg": "psycopg",
    "postgresql+psycopg2": "psycopg2",
}


def _storage_url(value: Any, base: Path) -> str:
    url = string(value, "a database URL")
    resolved = _resolve_sqlite(url, base)
    scheme = re.match(r"^([a-z][a-z0-9+]*)://", resolved)
    shown = redact_url(url)
    if not scheme:
        raise Invalid(f"{shown!r} is not a database URL such as sqlite:///state/monitor.db")
    driver = STORAGE_DRIVERS.get(scheme[1])
    if driver is None:
        raise Invalid(f"{shown!r} is not a SQLite or PostgreSQL URL (sqlite:///PATH, "
                      "postgresql://USER@HOST/DB)")
    if driver != "sqlite3":
        from importlib.util import find_spec

        if find_spec(driver) is None:  # found, not imported: loading stays cheap
            raise Invalid(f"{scheme[1]}:// needs the Python package {driver}, "
                          "which is not installed")
    return resolved


def redact_url(url: str) -> str:
    """A database URL without its password: ``postgresql://user:***@host/db``."""
    return re.sub(r"^([a-z][a-z0-9+]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _retention(value: Any, base: Path) -> float | None:
    return None if value in ("forever", "never") else duration(value, base)


def _listen(value: str) -> str | None:
    """HOST:PORT, where HOST is an IPv4 address, a [bracketed] IPv6 one or a host name."""
    if not value:
        return None
    example = f"{value!r} is not an address such as 127.0.0.1:9464"
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        return example
    if not 1 <= int(port) <= 65535:
        return f"{value!r}: port {int(port)} is out of range 1-65535"
    import ipaddress

    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{value!r}: {host} is not an IPv6 address"
        return None
    if ":" in host:
        return f"{value!r}: write an IPv6 address in brackets, such as [::1]:9464"
    if re.fullmatch(r"[\d.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{value!r}: {host} is not an IPv4 address"
        return None
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if not re.fullmatch(rf"{label}(\.{label})*", host):
        return f"{value!r}: {host!r} is not a host name or an IP address"
    return None


def _base_url(value: Any, base: Path) -> str | None:
    url = http_url(value, base)
    return (url.rstrip("/") + "/") if url else None


def _file_path(value: Any, base: Path) -> Path | None:
    """A file's path, relative to the config file's folder (it may not exist yet)."""
    given = string(value, "a file path")
    return base / given if given else None


def address_problem(value: str) -> str | None:
    """What is wrong with a ``HOST:PORT`` address (``serve --listen``), or None."""
    return _listen(value) or (f"{value!r} is not an address such as 127.0.0.1:8080"
                              if not value else None)


def _templates(value: Any, base: Path) -> Path | None:
    return folder(value, base) if string(value, "a folder path") else None


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
                 field="log_level"),
             Key("format", one_of("text", "json"),
                 "text lines, or one JSON object a line (time, level, logger, message)",
                 field="log_format"))),
    ("retention", (Key("items", _retention, "how long items are kept, or forever",
                       field="retention_items"),)),
    ("delivery", (Key("timeout", duration,
                      "the HTTP channels' wait for an answer, in all (email: [smtp] timeout)",
                      field="delivery_timeout"),)),
    ("metrics", (Key("listen", text("an address such as 127.0.0.1:9464", _listen),
                     "serve Prometheus metrics on HOST:PORT", field="metrics_listen"),)),
    ("web", (Key("listen", text("an address such as 127.0.0.1:8080", _listen),
                 "serve the web view on HOST:PORT (`run`; `serve` listens there too)",
                 field="web_listen"),
             Key("base_url", _base_url, "the web view's public address: digests link "
                 "each story to its page there", field="web_base_url"),
             Key("passwords", _file_path, "a file of user:hash lines (`news-monitor web "
                 "passwd USER`): HTTP basic authentication, required off loopback",
                 field="web_passwords"))),
    ("templates", (Key("dir", _templates, "templates overriding the shipped ones",
                       field="templates_dir"),)),
)

def _full_text(value: Any, base: Path) -> bool | str:
    if isinstance(value, bool):
        return value
    if value == "topic":
        return "topic"
    raise Invalid(f'{value!r} is not true, false or "topic"')


POLL = Table("poll", (
    Key("interval", duration, "how often each feed is polled"),
    Key("concurrency", integer(1024), "feeds fetched at once"),
    Key("per_host", integer(1024), "feeds fetched at once from one host"),
    Key("timeout", duration, "per request"),
    Key("max_bytes", integer(1 << 31), "a bigger response is cut off"),
    Key("max_redirects", integer(50)),
    Key("max_backoff", duration, "ceiling of a failing feed's back-off"),
    Key("stale_after_failures", integer(1000), "failures in a row before a feed is flagged"),
    Key("full_text", _full_text, "fetch each new item's article page and match its main text "
        '(true), or only where the headline names a topic without a hit ("topic")'),
), PollConfig)

def _feed_url(value: Any, base: Path) -> str:
    url = string(value, "a URL or a file path")
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):", url)
    # A one-letter "scheme" is a Windows drive; a plain path has none.
    if scheme and len(scheme[1]) > 1 and scheme[1].lower() not in ("http", "https", "file"):
        raise Invalid(f"{url!r} is neither an http(s) URL nor a file path"
                      f"{did_you_mean(scheme[1], ('http', 'https', 'file'))}")
    return telegram_preview_url(resolve_feed_url(url, base))


_TELEGRAM = re.compile(r"^https?://(?:www\.)?t\.me/(?:s/)?([A-Za-z0-9_]{4,64})/?$", re.IGNORECASE)


def telegram_preview_url(url: str) -> str:
    """A channel's ``https://t.me/NAME`` (or ``/s/NAME``) as its web preview's
    URL, ``https://t.me/s/NAME``; any other URL as it is."""
    m = _TELEGRAM.match(url)
    return f"https://t.me/s/{m[1]}" if m else url


FEED_KEYS: tuple[Key, ...] = (
    Key("url", _feed_url, "http(s) URL, or a file path relative to the config file",
        required=True),
    Key("name", text()),
    Key("interval", duration, "instead of poll.interval"),
    Key("kind", one_of("feed", "telegram"),
        "feed, or telegram: a channel's web preview (implied by a t.me URL)"),
    Key("full_text", _full_text, "instead of poll.full_text"),
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
    from zoneinfo import available_timezones  # reads the zone list: only for a bad name

    hint = did_you_mean(value, sorted(available_timezones())) or \
        " (use a name such as Asia/Almaty)"
    return f"unknown time zone {value!r}{hint}"


def _severity(value: Any, base: Path) -> Severity:
    name = string(value, "a severity")
    try:
        return Severity.parse(name)
    except KeyError:
        raise Invalid(f"{name!r} is not one of low, medium, high, critical") from None


def _quiet_hours(value: Any, base: Path) -> tuple[time, time]:
    qtext = string(value, "a range such as 22:00-07:00")
    qm = re.match(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$", qtext)
    if qm and int(qm[1]) < 24 and int(qm[3]) < 24 and int(qm[2]) < 60 and int(qm[4]) < 60:
        return (time(int(qm[1]), int(qm[2])), time(int(qm[3]), int(qm[4])))
    raise Invalid(f"{qtext!r} is not a range such as 22:00-07:00")


_DESK_NAME = Key("name", text(), "letters, digits, '-', '_' or '.'")
_DESK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
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


def config_path(path: Path | str | None, environ: Mapping[str, str] | None = None
                ) -> Path | None:
    """The configuration file in use: ``--config PATH``, ``$NEWS_MONITOR_CONFIG``,
    ``./monitor.toml``; None for the embedded default."""
    env = os.environ if environ is None else environ
    if path is None:
        if env.get(CONFIG_ENV):
            path = env[CONFIG_ENV]
        elif Path("monitor.toml").is_file():
            path = "monitor.toml"
    return None if path is None else Path(path)


def load_settings(path: Path | str | None, *, channels: Callable[[], Sequence[ChannelConfig]],
                  environ: Mapping[str, str] | None = None,
                  check_environment: bool = False) -> Settings:
    """Find and load the configuration (see module docstring). Raises ConfigError.

    ``check_environment`` (``check``): also refuse what this machine lacks now,
    which loading otherwise leaves to the moment it is needed: a secret that
    cannot be read (needed to send), a local feed file that does not exist
    (needed to poll it).
    """
    env = os.environ if environ is None else environ
    path = config_path(path, env)
    if path is None:
        return default_settings(env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(str(path), None, None, f"cannot read: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(str(path), None, None, "is not UTF-8 text")]) from e
    return parse_settings(text, str(path), base=path.resolve().parent, channels=channels,
                          check_environment=check_environment)


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
                   channels: Callable[[], Sequence[ChannelConfig]],
                   check_environment: bool = False) -> Settings:
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
    r = Reader(source, text, base, check_secrets=check_environment)
    own = ("storage", "rules", "poll", "feeds", "desks", *(name for name, _ in _FLAT[2:]))
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

    feeds = _read_feeds(r, data, check_files=check_environment)

    channel_tables: dict[str, object] = {}
    for owned in tables:
        if owned.name in data:
            raw = r.table(data, owned.name)
            r.known(raw, owned.name, [k.name for k in owned.keys])
            channel_tables[owned.name] = owned.build(**r.read(raw, owned.name, owned.keys))

    desks = _read_desks(r, data, specs, channel_tables)

    for name, keys in _FLAT[2:]:  # log, retention, delivery, metrics, web, templates
        t = r.table(data, name)
        r.known(t, name, [k.name for k in keys])
        flat.update(r.read(t, name, keys))

    if r.problems:
        raise ConfigError(r.problems)
    return Settings(source=source, poll=poll, feeds=tuple(feeds), desks=tuple(desks),
                    channel_tables=channel_tables, secrets=tuple(r.secrets), **flat)


def _read_feeds(r: Reader, data: Mapping[str, Any], *, check_files: bool) -> list[FeedConfig]:
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
        missing = local_feed_file(url) if check_files else None
        if missing is not None and not missing.is_file():
            r.problem(f"{key}.url", f"local feed file {missing} does not exist")
        if url.startswith("https://t.me/s/"):  # _feed_url made every t.me URL this
            values["kind"] = "telegram"
        feeds.append(FeedConfig(**values))
    return feeds


def _read_desks(r: Reader, data: Mapping[str, Any], channels: Sequence[ChannelConfig],
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
        given = t.get("name")
        if isinstance(given, str) and _DESK_NAME_RE.match(given) and given not in names:
            r.show_as(key, desk_key(given))  # messages name the desk: desks.energy.email
        r.known(t, key, allowed)
        name = r.read(t, key, (_DESK_NAME,)).get("name", "")
        if not _DESK_NAME_RE.match(name):
            r.problem(f"{key}.name" if name else key,
                      "a desk needs a name of letters, digits, '-', '_' or '.'")
            continue
        if name in names:
            r.problem(f"{key}.name", f"duplicate desk name {name!r} (also {desk_key(name)})")
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
        for channel_key, message in channel.check(
                chosen, None if table is None else channel_tables.get(table.name)):
            r.problem(f"{key}.{channel_key}", message)
    return desks


def _check_alert_channels(r: Reader, key: str, desk: DeskConfig) -> None:
    """``alert_channels``: some of the desk's own channels (one for alerts, all of
    them for the digest)."""
    where = f"{key}.alert_channels"
    if desk.alert_min_severity is None:
        r.problem(where, "has no effect without alert_min_severity (which hits to alert)")
    for channel in desk.alert_channels or ():
        if channel not in desk.channels:
            hint = did_you_mean(channel, desk.channels) or \
                f" (its channels: {', '.join(desk.channels) or 'none'})"
            r.problem(where, f"{channel!r} is not a channel of this desk{hint}")


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


def local_feed_file(url: str) -> Path | None:
    """The file a feed URL names (a path or ``file://``), or None for http(s)."""
    if url.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(url).path))
    if re.match(r"^https?://", url, re.IGNORECASE):
        return None
    return Path(url)


def desk_key(name: str) -> str:
    """How messages name a desk's keys: ``desks.energy`` (quoted if the name has a dot)."""
    return f'desks."{name}"' if "." in name else f"desks.{name}"


def _key_lines(settings: Settings) -> dict[str, int]:
    if settings.source == "<default>":
        return {}
    try:
        return locate_keys(Path(settings.source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def validate_desk_rules(settings: Settings, rule_ids: set[str],
                        on_problem: Callable[[Problem], None]) -> None:
    """Report desks that name rules that do not exist (needs the loaded rules)."""
    lines = _key_lines(settings)
    for i, desk in enumerate(settings.desks):
        for rule in desk.rules:
            if rule != "*" and rule not in rule_ids:
                line = lines.get(f"desks[{i}].rules", lines.get(f"desks[{i}]"))
                on_problem(Problem(settings.source, line, None,
                                   f"{desk_key(desk.name)}.rules: unknown rule {rule!r}"
                                   f"{did_you_mean(rule, sorted(rule_ids))}"))


def unreadable_secrets(settings: Settings) -> list[Problem]:
    """Each secret the configuration names that cannot be read now (what ``check``
    refuses; the daemon warns of them at start: the sends that need one fail)."""
    found: list[Problem] = []
    for use in settings.secrets:
        message = use.secret.problem()
        if message:
            found.append(Problem(settings.source, use.line, None, f"{use.key}: {message}"))
    return found


def idle_desks(settings: Settings) -> list[Problem]:
    """A desk with no channel: its hits are stored, never sent (a warning, not an error)."""
    lines = _key_lines(settings)
    return [Problem(settings.source, lines.get(f"desks[{i}]"), None,
                    f"{desk_key(desk.name)}: no channel configured: its hits are stored, "
                    "never sent")
            for i, desk in enumerate(settings.desks) if not desk.channels]
