"""Configuration keys, declared once, and the one reader that applies them.

A :class:`Key` is a key's name, its parser (which validates and converts; a
refusal is :class:`Invalid` with the operator's message), whether it holds a
:class:`Secret`, and a line of help; a :class:`Table` is a top-level table's
keys and the frozen value it builds. :class:`Reader` reads declared keys from
parsed TOML and collects every problem as ``file:line: key.path: message``,
with "did you mean" for unknown keys. ``tomllib`` gives values but no
positions, so :func:`locate_keys` maps each key path to its line by a light
scan of the text.

:mod:`monitor.settings` declares the program's own tables with these; each
channel (:mod:`monitor.channels`) declares its keys with them too.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitor.errors import ConfigError, Problem
from monitor.timespec import parse_duration

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
        """The secret's value; ConfigError (:meth:`problem`'s message) when it cannot be read."""
        kind, _, name = self.ref.partition(":")
        if kind == "env":
            value = os.environ.get(name)
            if not value:  # an untouched secrets.env sets NAME= : as good as unset
                raise ConfigError([Problem("<environment>", None, None,
                                           _env_problem(name, value))])
            return value
        path = self.path
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError([Problem(str(path), None, None, _unreadable(path, e))]) from e
        if not text:
            raise ConfigError([Problem(str(path), None, None, f"secret file {path} is empty")])
        return text

    @property
    def path(self) -> Path:
        """A ``file:`` secret's file (relative to the config file's folder)."""
        path = Path(self.ref.partition(":")[2])
        return path if path.is_absolute() or self.base is None else self.base / path

    def problem(self) -> str | None:
        """Why the secret cannot be read now, or None; never returns the value."""
        kind, _, name = self.ref.partition(":")
        if kind == "env":
            value = os.environ.get(name)
            return None if value else _env_problem(name, value)
        path = self.path
        if not os.access(path, os.R_OK) or not path.is_file():
            return _unreadable(path, None)
        if not path.read_bytes().strip():
            return f"secret file {path} is empty"
        return None

    def __str__(self) -> str:
        return self.ref


def _env_problem(name: str, value: str | None) -> str:
    return f"environment variable {name} is " + ("not set" if value is None else "empty")


def _unreadable(path: Path, error: OSError | None) -> str:
    if not path.exists():
        return f"secret file {path} does not exist"
    if path.is_dir():
        return f"secret file {path} is a folder"
    return f"secret file {path} cannot be read: {error.strerror if error else 'permission denied'}"


@dataclass(frozen=True, slots=True)
class SecretUse:
    """Where a configuration names a secret: the key as reported, its line, the reference."""

    key: str
    line: int | None
    secret: Secret


# -- declaring keys -------------------------------------------------------------


class Invalid(ValueError):
    """A parser's refusal; its text follows ``file:line: key.path: `` in the report."""


#: A key's parser: the TOML value and the config file's folder -> the typed value.
#: Raises :class:`Invalid`.
Parser = Callable[[Any, Path], Any]


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key, declared once: read by :meth:`Reader.read`.

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

def string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not {what}")
    return value


def text(what: str = "a string", check: Callable[[str], str | None] | None = None
         ) -> Parser:
    """A string; ``check`` returns a problem's message, or None when the value is fine."""
    def parse(value: Any, base: Path) -> str:
        given = string(value, what)
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
        given = string(value, "a string")
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
    path = base / string(value, "a folder path")
    if not path.is_dir():
        raise Invalid(f"folder {path} does not exist")
    return path


def secret(value: Any, base: Path) -> Secret | None:
    """A :class:`Secret` reference (``env:NAME``, ``file:PATH``): its form only.

    The secret is neither read nor looked for here (the commands that only look
    run without it); :meth:`Secret.reveal` reads it when a message is sent, and
    :class:`Reader` reports an unreadable one when asked to (``check``).
    """
    if not isinstance(value, str):
        raise Invalid(f"{value!r} is not a secret reference (env:NAME or file:PATH)")
    if not value:
        return None
    kind, sep, ref = value.partition(":")
    if not sep or kind not in ("env", "file") or not ref:
        raise Invalid("secrets are given as env:NAME or file:PATH, never inline")
    return Secret(value, base)


def http_url(value: Any, base: Path) -> str:
    url = string(value, "a URL")
    if url and not re.match(r"^https?://", url):
        raise Invalid(f"{url!r} is not an http(s) URL")
    return url


# -- locating keys in the TOML text ------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


def locate_keys(text: str) -> dict[str, int]:
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
            # The tables it is under ([desk.energy] -> desk; [[desk]] -> desk), at
            # their first header, so that an unknown one is reported with a line.
            parts = name.split(".")
            for n in range(1, len(parts) + 1):
                lines.setdefault(".".join(parts[:n]), number)
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


class Reader:
    """Collects problems while the declared keys are read from the parsed TOML.

    ``check_secrets``: report each secret that cannot be read now (``check``);
    otherwise only a secret's form is checked, and the loaded settings only
    list the secrets they name (:attr:`secrets`).
    """

    def __init__(self, path: str, text: str, base: Path, *, check_secrets: bool = False
                 ) -> None:
        self.path = path
        self.base = base
        self.lines = locate_keys(text) if text else {}
        self.problems: list[Problem] = []
        self.secrets: list[SecretUse] = []
        self.check_secrets = check_secrets
        self._shown: dict[str, str] = {}

    def show_as(self, key: str, shown: str) -> None:
        """Report ``key`` (``desks[0]``) and the keys under it as ``shown`` (``desks.energy``)."""
        self._shown[key] = shown

    def shown(self, key: str) -> str:
        """``key`` as reported: its prefix replaced as :meth:`show_as` says."""
        for prefix, shown in self._shown.items():
            if key == prefix or key.startswith((prefix + ".", prefix + "[")):
                return shown + key[len(prefix):]
        return key

    def line_of(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0] if "." in key else key.rpartition("[")[0]
        return None

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, self.line_of(key), None,
                                     f"{self.shown(key)}: {message}" if key else message))

    def known(self, table: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                self.problem(where, f"unknown key{did_you_mean(name, allowed)}")

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
                out[k.target] = value = k.parse(table[k.name], self.base)
            except Invalid as e:
                self.problem(f"{where}.{k.name}", str(e))
                continue
            if k.secret and isinstance(value, Secret):
                self._secret(f"{where}.{k.name}", value)
        return out

    def _secret(self, key: str, value: Secret) -> None:
        self.secrets.append(SecretUse(self.shown(key), self.line_of(key), value))
        problem = value.problem() if self.check_secrets else None
        if problem:
            self.problem(key, problem)

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


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, compared in lower
    case (``europe/moskow`` -> ``Europe/Moscow``); empty when none is close."""
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(word.lower(), folded, n=1)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""
