"""The configuration as the program loads it: the generic reader with the channels.

:mod:`monitor.settings` reads a configuration file but knows no channel (it
is a lower layer than :mod:`monitor.channels`, which declares its keys with
the reader's :class:`~monitor.config_keys.Key` records). This module joins the
two: it hands the registry's :data:`monitor.channels.SPECS` to the reader.
The CLI, the daemon and the tests load settings through it.

The registry is imported only when the reader asks for it (the file has
desks, or a table of a channel's), so a poll of a feeds-only configuration
imports no channel module; and a channel module imports nothing heavy until
it sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.config_keys import ChannelConfig
from monitor.settings import Settings
from monitor.settings import load_settings as _load
from monitor.settings import parse_settings as _parse

__all__ = ["load_settings", "parse_settings"]


def _channels() -> Sequence[ChannelConfig]:
    from monitor.channels import SPECS

    return SPECS


def load_settings(path: Path | str | None = None, *,
                  environ: Mapping[str, str] | None = None,
                  check_environment: bool = False) -> Settings:
    """Find and load the configuration (``--config``, ``$NEWS_MONITOR_CONFIG``,
    ``./monitor.toml``, the embedded default). Raises ConfigError.

    Secrets are not read (only ``check_environment``, for ``check``, refuses
    one that cannot be read now, and a missing local feed file)."""
    return _load(path, channels=_channels, environ=environ,
                 check_environment=check_environment)


def parse_settings(text: str, source: str, *, base: Path) -> Settings:
    """Parse configuration text; relative paths resolve against ``base``."""
    return _parse(text, source, base=base, channels=_channels)
