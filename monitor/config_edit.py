"""Edits to the configuration file that keep its comments and layout (tomlkit).

``feeds add`` and ``feeds import`` append ``[[feeds]]`` tables; feeds stay
declarative, in the file, like the rules.
"""

from __future__ import annotations

import os
from pathlib import Path

from monitor.config import parse_settings
from monitor.errors import ConfigError, Problem
from monitor.settings import CONFIG_ENV, Settings
from monitor.timespec import parse_duration


def target_path(explicit: str | None, settings: Settings) -> Path:
    """The file to edit; on the embedded default, a new ./monitor.toml seeded with it."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if settings.source != "<default>":
        return Path(settings.source)
    path = Path("monitor.toml")
    if not path.exists():
        _write_seed(path, settings)
    return path


def _write_seed(path: Path, settings: Settings) -> None:
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("news-monitor configuration, created by `news-monitor feeds add`."))
    doc.add(tomlkit.comment("Every key is described in README.md (Configuration)."))
    doc.add(tomlkit.nl())
    rules = tomlkit.table()
    rules["dir"] = str(settings.rules_dir)
    doc["rules"] = rules
    storage = tomlkit.table()
    storage["url"] = "sqlite:///state/monitor.db"
    doc["storage"] = storage
    feeds = tomlkit.aot()
    for f in settings.feeds:
        t = tomlkit.table()
        t["url"] = f.url
        if f.name:
            t["name"] = f.name
        feeds.append(t)
    doc["feeds"] = feeds
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def add_feeds(path: Path, settings: Settings,
              entries: list[tuple[str, str | None, str | None]]) -> int:
    """Append (url, name, interval) feeds not already configured; returns how many.

    The edited text is validated before it replaces the file, and the file is
    replaced atomically, so a bad entry never leaves a broken configuration.
    """
    import tomlkit

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = tomlkit.parse(text)
    known = {f.url for f in settings.feeds} | {
        str(t.get("url")) for t in doc.get("feeds", [])}
    feeds = doc.get("feeds")
    if feeds is None:
        feeds = tomlkit.aot()
        doc["feeds"] = feeds
    added = 0
    for url, name, interval in entries:
        if url in known:
            continue
        if interval is not None:
            try:
                parse_duration(interval)
            except ValueError:
                raise ConfigError([Problem(str(path), None, None,
                                           f'"{interval}" is not a duration such as 5m')]) from None
        t = tomlkit.table()
        t["url"] = url
        if name:
            t["name"] = name
        if interval:
            t["interval"] = interval
        feeds.append(t)
        known.add(url)
        added += 1
    new_text = tomlkit.dumps(doc)
    parse_settings(new_text, str(path), base=path.resolve().parent)  # raises ConfigError
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)
    return added
