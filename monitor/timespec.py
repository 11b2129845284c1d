"""Durations and cron expressions as the configuration writes them.

``30s``, ``15m``, ``2h``, ``1d`` or combined (``1h30m``) are durations
(:func:`parse_duration`, and back with :func:`format_duration` for messages
and ``status``); a desk's ``schedule`` is a standard 5-field cron expression
(:func:`parse_cron`), converted to APScheduler's fields.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2d`` back from ``now``, or an ISO date/time (UTC unless it says otherwise);
    ValueError for anything else (each caller words its own message)."""
    try:
        return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration such as 2d nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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
