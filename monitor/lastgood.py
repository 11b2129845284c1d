"""The last good configuration and rules, kept on disk so that they survive a restart.

After every start and reload that loaded cleanly, the daemon keeps a copy of
the configuration file and of the rule files it runs on (:func:`save`); started
on a broken file, it runs on that copy instead of failing (:func:`find`,
:func:`load`) until a reload takes the fixed files.

Where: ``$STATE_DIRECTORY/last-good/`` under systemd (the unit's
``/var/lib/news-monitor``), else ``state/last-good/`` beside the configuration
file (the folder its default SQLite file goes in), ``./state/last-good/`` for
the embedded default (:func:`folder`). The place must be known without reading
the configuration, because the configuration is what may be broken: so not
beside the SQLite file its ``[storage] url`` names, nor in the store (whose
URL is in the same file). A local folder works for SQLite and PostgreSQL
alike, and each host keeps the copy of its own files.

Layout, written so that a reader sees a whole copy or the previous one::

    last-good/current.json                    which copy, of what, since when
    last-good/copy-<time>-<pid>/monitor.toml  the configuration, byte for byte
    last-good/copy-<time>-<pid>/rules/*.yaml  its rule files, byte for byte

A copy folder is written under a temporary name and renamed into place, then
``current.json`` is replaced (temp + rename); older copy folders are removed.
The copy is parsed with the original folder as its base, so every relative
path in it (rules folder, SQLite file, templates, local feed files) resolves
as the original did; only the rules are read from the copy, and they keep the
original files' names in messages. Files are private (0600): an inline secret
in the configuration is no more exposed than the original.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from monitor.errors import ConfigError, Problem
from monitor.models import isoformat_z
from monitor.rules import RuleSet, load_rules
from monitor.settings import Settings, config_path, validate_desk_rules

__all__ = ["DEFAULT_SOURCE", "FOLDER", "Copy", "config_path", "copied_settings", "find", "folder",
           "load", "save"]

FOLDER = "last-good"
DEFAULT_SOURCE = "<default>"  # Settings.source of the embedded default
_MANIFEST = "current.json"
_FORMAT = 1
_KEEP_OTHERS = 60.0  # seconds: a copy folder this young may be another process's, in flight


@dataclass(frozen=True, slots=True)
class Copy:
    """One kept copy: of which configuration, from when, where its files are."""

    saved: datetime
    config: str  # the original configuration file (absolute), or "<default>"
    base: Path  # the folder the original's relative paths resolve against
    rules_dir: Path  # the original rules folder
    folder: Path  # the copy's own folder
    digest: str  # of the configuration and rule files' bytes

    @property
    def config_file(self) -> Path | None:
        """The copied configuration file (None for the embedded default)."""
        return None if self.config == DEFAULT_SOURCE else self.folder / Path(self.config).name

    @property
    def rules(self) -> Path:
        """The copied rules folder."""
        return self.folder / "rules"

    @property
    def saved_text(self) -> str:
        return isoformat_z(self.saved) or ""


def folder(config: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the copies of this configuration are kept (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]).absolute() / FOLDER
    path = config_path(config, env)
    state = path.resolve().parent / "state" if path is not None else Path("state").absolute()
    return state / FOLDER


def _identity(config: Path | None) -> str:
    return DEFAULT_SOURCE if config is None else str(config.resolve())


# -- reading ----------------------------------------------------------------------


def find(where: Path, config: Path | None) -> Copy | None:
    """The copy kept in ``where`` of the configuration ``config`` (None: the embedded
    default), or None when there is none: first start, or a copy of another file.

    Raises OSError or ValueError when a copy is there but cannot be read."""
    try:
        raw = (where / _MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a copy this version wrote")
        if data["config"] != _identity(config):
            return None
        copy = Copy(saved=datetime.fromisoformat(data["saved"]), config=data["config"],
                    base=Path(data["base"]), rules_dir=Path(data["rules_dir"]),
                    folder=where / Path(data["copy"]).name, digest=data["digest"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where / _MANIFEST}: unreadable ({e})") from e
    if not copy.rules.is_dir():
        raise ValueError(f"{copy.folder}: the copy's folder is missing")
    return copy


def copied_settings(copy: Copy, source: str) -> Settings:
    """The configuration of a copy, parsed as ``source`` with the original base folder
    (so relative paths resolve as the original's did). Raises ConfigError."""
    from monitor.config import parse_settings
    from monitor.settings import default_settings

    file = copy.config_file
    if file is None:
        return default_settings()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Problem(str(file), None, None, f"cannot read the copy: {e}")]) \
            from e
    return parse_settings(text, source, base=copy.base)


def load(copy: Copy, source: str) -> tuple[Settings, RuleSet]:
    """The settings and rules of a copy, as the original files gave them: the
    configuration as :func:`copied_settings` gives it, the rules from the copy under
    their original paths. Raises ConfigError/RuleFileError."""
    settings = copied_settings(copy, source)
    loaded = load_rules(copy.rules)
    rules = RuleSet(tuple(replace(r, path=str(settings.rules_dir / Path(r.path).name))
                          for r in loaded.rules))
    problems: list[Problem] = []
    validate_desk_rules(settings, set(rules.ids), problems.append)
    if problems:
        raise ConfigError(problems)
    return settings, rules


# -- writing ------------------------------------------------------------------------


def save(where: Path, settings: Settings, rules: RuleSet, *,
         now: datetime | None = None) -> Copy | None:
    """Keep a copy of the files ``settings`` and ``rules`` were loaded from.

    Returns the copy now current (the one already kept when the files are the
    same), or None when a file changed since it was loaded (the next reload keeps
    it). Raises OSError when the copy cannot be written (the old one stays).
    """
    config = None if settings.source == DEFAULT_SOURCE else Path(settings.source)
    files = _read_what_was_loaded(config, settings, rules)
    if files is None:
        return None
    text, rule_bytes = files
    digest = _digest(text, rule_bytes)
    try:
        current = find(where, config)
    except (OSError, ValueError):
        current = None  # unreadable: written over
    if current is not None and current.digest == digest and current.rules_dir == settings.rules_dir:
        return current
    when = (now or datetime.now(UTC)).astimezone(UTC)
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"copy-{when.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}"
    tmp = where / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir(mode=0o700)
        (tmp / "rules").mkdir(mode=0o700)
        if config is not None and text is not None:
            _write(tmp / config.name, text)
        for file_name, data in rule_bytes.items():
            _write(tmp / "rules" / file_name, data)
        _sync_dir(tmp / "rules")
        _sync_dir(tmp)
        tmp.rename(where / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    base = config.resolve().parent if config is not None else Path.cwd()
    identity = _identity(config)
    manifest = {"format": _FORMAT, "saved": isoformat_z(when), "config": identity,
                "base": str(base), "rules_dir": str(settings.rules_dir), "copy": name,
                "digest": digest, "rules": sorted(rule_bytes)}
    pointer = where / f".{_MANIFEST}.{os.getpid()}.tmp"
    try:
        _write(pointer, (json.dumps(manifest, indent=2) + "\n").encode())
        os.replace(pointer, where / _MANIFEST)
    except BaseException:
        with contextlib.suppress(OSError):
            pointer.unlink()
        shutil.rmtree(where / name, ignore_errors=True)
        raise
    _sync_dir(where)
    _remove_others(where, keep=name)
    return Copy(saved=when.replace(microsecond=0), config=identity, base=base,
                rules_dir=settings.rules_dir, folder=where / name, digest=digest)


def _read_what_was_loaded(config: Path | None, settings: Settings, rules: RuleSet,
                          ) -> tuple[bytes | None, dict[str, bytes]] | None:
    """The bytes of the configuration and rule files, if they are still what was
    loaded: each rule file's hash is its rule's version, and the configuration
    parses to the same settings (so the copy is known good, not merely recent)."""
    from monitor.config import parse_settings
    from monitor.rules import rule_files

    rule_bytes: dict[str, bytes] = {}
    try:
        on_disk = {p.name for p in rule_files(settings.rules_dir)}
        for rule in rules.rules:
            path = Path(rule.path)
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest()[:12] != rule.version:
                return None
            rule_bytes[path.name] = data
        if on_disk != set(rule_bytes):  # a file added or removed since
            return None
        text = config.read_bytes() if config is not None else None
    except OSError:
        return None
    if config is not None and text is not None:
        try:
            again = parse_settings(text.decode("utf-8"), settings.source,
                                   base=config.resolve().parent)
        except (ConfigError, UnicodeDecodeError):
            return None
        if again != settings:
            return None
    return text, rule_bytes


def _digest(text: bytes | None, rule_bytes: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    h.update(b"config\0" + (text if text is not None else b"<default>") + b"\0")
    for name in sorted(rule_bytes):
        h.update(name.encode() + b"\0" + hashlib.sha256(rule_bytes[name]).digest())
    return h.hexdigest()


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_others(where: Path, *, keep: str) -> None:
    """Remove the copy folders no longer current. One younger than a minute is left:
    it may be another daemon's on the same files, being written or just made current."""
    current: object = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        current = json.loads((where / _MANIFEST).read_text(encoding="utf-8")).get("copy")
    now = time.time()
    for entry in where.iterdir():
        if not entry.name.startswith(("copy-", ".tmp-")) or entry.name in (keep, current):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _KEEP_OTHERS:
                shutil.rmtree(entry)
