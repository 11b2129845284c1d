"""The exception tree of news-monitor.

Every error the package raises on purpose derives from :class:`MonitorError`,
and its ``str()`` names the thing that failed (a file and line, a feed URL, a
channel), so callers can print it as it is::

    MonitorError
    ├── ConfigError          monitor.toml:12: feeds[3].interval: ...
    ├── RuleFileError        rules/cpc.yaml:4:3: unknown key 'term' ...
    ├── StorageError         the database failed or is unreachable
    └── NotifyError(channel) a delivery failed (transient or permanent)

A feed that cannot be fetched or parsed raises nothing: the fetch and parse
stages return it as a value (``FetchResult.error_kind``, ``ParsedFeed.problem``),
and the pipeline records it in the feed's state.
Third-party exceptions are wrapped exactly once, at the module that owns the
library (SQLAlchemy in ``store``, a channel's transport in its module), with
``raise ... from``. Programming errors (TypeError, KeyError...) are never wrapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class MonitorError(Exception):
    """Root of every error news-monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a file: where it is and what is wrong.

    ``line`` and ``column`` are 1-based; either may be unknown (None).
    Rendered as ``path:line:col: message`` (``path:line: message`` without a
    column, ``path: message`` without a line) as ``news-monitor check`` prints it.
    """

    path: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class _ProblemsError(MonitorError):
    """An error that carries one or more :class:`Problem` s, all reported at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(_ProblemsError):
    """The configuration file is invalid."""


class RuleFileError(_ProblemsError):
    """One or more rule files are invalid."""


class StorageError(MonitorError):
    """The store failed or is unreachable."""


class NotifyError(MonitorError):
    """A delivery failed. ``permanent`` failures are not retried.

    ``uncertain``: the request was fully written, then the answer timed out or
    the connection dropped, so the receiver may have the message: it is resent
    at most once (see :mod:`monitor.deliver`).
    """

    def __init__(self, channel: str, message: str, *, permanent: bool = False,
                 retry_after: float | None = None, uncertain: bool = False) -> None:
        self.channel = channel
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.uncertain = uncertain
        super().__init__(f"{channel}: {message}")
