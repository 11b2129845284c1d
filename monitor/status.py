"""The state of a deployment, read from the store as one JSON-ready document:
each configured feed's polling state, the stored totals, the deliveries still
pending, being retried or failed for good, and the daemons running.

``news-monitor status`` prints it (as a table, or as this document in JSON),
``deliveries list --format json`` prints :func:`delivery_row`, and the web view
will show the same document. The caller opens and closes the store, and any
:class:`monitor.errors.StorageError` comes through unchanged.

The daemons' heartbeats are judged here too: each running daemon refreshes its
``daemon:<host>:<pid>`` row every :func:`heartbeat_interval` seconds (and says
so in the row), and a row not refreshed for :data:`STALE_AFTER_BEATS` of its
intervals is a daemon gone: ``status`` no longer lists it and housekeeping
deletes it (:func:`stale_daemon_keys`).

The store's own health (:class:`StoreHealth`): a full disk or a lost write
permission leaves every read working, so ``status`` proves a write with
:func:`probe_store` (one ``status:probe`` row, rewritten each time), and each
daemon's row says whether its own writes work (``store``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.models import isoformat_z
from monitor.timespec import parse_duration

if TYPE_CHECKING:
    from monitor.models import Delivery, FeedState, StoredHit
    from monitor.settings import FeedConfig, Settings
    from monitor.store import Store

__all__ = ["HEARTBEAT_ENV", "HEARTBEAT_INTERVAL", "PROBE_KEY", "STALE_AFTER_BEATS",
           "DeliveryRow", "DeliveryStatus", "FeedRow", "StatusDocument", "StoreHealth",
           "delivery_row", "delivery_status", "heartbeat_interval", "hit_object", "is_fresh",
           "pending_pairs", "probe_store", "running_daemons", "stale_daemon_keys",
           "status_document", "store_health"]

HEARTBEAT_INTERVAL = 15.0  # seconds between a daemon's heartbeats
HEARTBEAT_ENV = "NEWS_MONITOR_HEARTBEAT"  # a duration ("15s") overriding it, for one daemon
STALE_AFTER_BEATS = 3  # heartbeats missed in a row: the daemon is gone
DAEMON_PREFIX = "daemon:"
PROBE_KEY = "status:probe"  # the row status writes to prove the store takes writes


class FeedRow(TypedDict):
    """One configured feed and how its polling goes (times in ISO 8601, UTC)."""

    url: str
    name: str
    items: int
    last_polled: str | None
    last_status: int | str | None  # an HTTP status, or an error word ("timeout")
    error: str | None
    failures: int
    next_poll: str | None
    disabled: str | None  # why it is no longer polled; None for a feed never polled
    flag: str | None
    article_failures: int  # full_text: article pages not fetched or read, ever
    article_error: str | None  # ... and the last one's link and reason


class DeliveryRow(TypedDict):
    """One delivery (times in ISO 8601, UTC)."""

    id: int
    desk: str
    channel: str
    kind: str
    state: str
    attempts: int
    created_at: str | None
    next_attempt: str | None
    sent_at: str | None
    last_error: str | None


class DeliveryStatus(TypedDict):
    """What is owed to the desks: hit x channel pairs not yet delivered, the
    deliveries being retried and those that failed for good."""

    pending_deliveries: int
    retrying: list[DeliveryRow]
    failed: list[DeliveryRow]


class StoreHealth(TypedDict):
    """Whether the store takes writes: ``ok`` is false when ``status``'s own
    write failed (``writable`` false, ``error`` says why) or when a running
    daemon says its writes fail (``error`` is its report, ``since`` when they
    began, ``daemon`` which one)."""

    ok: bool
    writable: bool | None  # the probe's verdict; None: not probed
    error: str | None
    since: str | None
    daemon: str | None


class StatusDocument(DeliveryStatus):
    """The whole state: :class:`DeliveryStatus` and the feeds, totals and daemons."""

    feeds: list[FeedRow]
    items: int
    hits: int
    # The daemons whose heartbeat is fresh, as each publishes itself: pid, host,
    # version, started, last_seen, heartbeat (its interval), owner, rules,
    # config (its file), last_good_copy (None, or {saved, folder, problems} while it
    # runs on its last good copy because the files are broken)...
    daemons: list[dict[str, Any]]
    store: StoreHealth


def hit_object(h: StoredHit) -> dict[str, Any]:
    """One stored hit as ``hits --format jsonl`` prints it and ``GET /api/hits``
    gives it (SPEC): the one builder of that object."""
    return {
        "id": h.id, "story": str(h.story_key), "rule": h.rule_id, "score": h.score,
        "severity": str(h.severity),
        "guid": h.guid, "title": h.title, "link": h.link, "feed": h.feed_url,
        "feed_name": h.feed_name, "outlet": h.shown_outlet,
        "published": isoformat_z(h.published),
        "matched_at": isoformat_z(h.matched_at), "rule_version": h.rule_version,
        "evidence": [e.to_dict() for e in h.evidence], "feedback": h.feedback,
    }


def status_document(settings: Settings, store: Store, *, limit: int = 20,
                    probe: bool = False) -> StatusDocument:
    """The state of the configured feeds and desks in ``store``; at most ``limit``
    deliveries of each of the retrying and failed lists. ``probe``: also try a
    write (:func:`probe_store`), the one write this document makes."""
    probed = probe_store(store) if probe else None
    states = store.feed_states()
    counts = store.item_counts()
    totals = store.totals()
    daemons = running_daemons(store)
    deliveries = delivery_status(settings, store, limit=limit)
    return {"feeds": [_feed_row(f, states.get(f.url), counts.get(f.url, 0))
                      for f in settings.feeds],
            "items": totals["items"], "hits": totals["hits"],
            "pending_deliveries": deliveries["pending_deliveries"],
            "retrying": deliveries["retrying"], "failed": deliveries["failed"],
            "daemons": daemons, "store": store_health(probed, daemons, probed=probe)}


def probe_store(store: Store) -> str | None:
    """Write one small row: None when the store took it, else the error."""
    from monitor.errors import StorageError

    try:
        store.put_state(PROBE_KEY, {"at": isoformat_z(datetime.now(UTC))})
    except StorageError as e:
        return str(e)
    return None


def store_health(probe_error: str | None, daemons: list[dict[str, Any]], *,
                 probed: bool = True) -> StoreHealth:
    """The verdict from the probe's outcome and the daemons' own reports."""
    if probe_error is not None:
        return {"ok": False, "writable": False, "error": probe_error, "since": None,
                "daemon": None}
    for d in daemons:
        report = d.get("store")
        if isinstance(report, dict) and report.get("ok") is False:
            return {"ok": False, "writable": True if probed else None,
                    "error": str(report.get("error")), "since": report.get("since"),
                    "daemon": f"{d.get('host')}:{d.get('pid')}"}
    return {"ok": True, "writable": True if probed else None, "error": None, "since": None,
            "daemon": None}


def heartbeat_interval() -> float:
    """Seconds between heartbeats: :data:`HEARTBEAT_INTERVAL`, or ``$NEWS_MONITOR_HEARTBEAT``
    (a duration such as ``5s``, or a number of seconds; at least 0.1)."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_INTERVAL
    try:
        return max(0.1, float(text))
    except ValueError:
        pass
    try:
        return max(0.1, parse_duration(text))
    except ValueError:
        return HEARTBEAT_INTERVAL


def is_fresh(row: Mapping[str, Any] | None, now: datetime) -> bool:
    """Whether a published daemon row was refreshed within :data:`STALE_AFTER_BEATS`
    of its own heartbeat interval (a row with no ``last_seen`` never was)."""
    if not row or not isinstance(row.get("last_seen"), str):
        return False
    try:
        seen = datetime.fromisoformat(row["last_seen"].replace("Z", "+00:00"))
        every = float(row.get("heartbeat") or HEARTBEAT_INTERVAL)
    except (TypeError, ValueError):
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return (now - seen).total_seconds() <= STALE_AFTER_BEATS * every


def running_daemons(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """The daemons whose heartbeat is fresh, oldest start first."""
    now = now or datetime.now(UTC)
    rows = [dict(row) for row in store.states(DAEMON_PREFIX).values() if is_fresh(row, now)]
    return sorted(rows, key=lambda r: (str(r.get("started")), str(r.get("owner"))))


def stale_daemon_keys(store: Store, now: datetime | None = None) -> list[str]:
    """The keys of the daemon rows whose heartbeat stopped (housekeeping deletes them)."""
    now = now or datetime.now(UTC)
    return sorted(key for key, row in store.states(DAEMON_PREFIX).items()
                  if not is_fresh(row, now))


def _feed_row(f: FeedConfig, st: FeedState | None, items: int) -> FeedRow:
    last_status: int | str | None = st.last_status if st else None
    if isinstance(last_status, str) and last_status.isdigit():
        last_status = int(last_status)
    return {
        "url": f.url,
        "name": f.name or (st.title if st else None) or f.url,
        "items": items,
        "last_polled": isoformat_z(st.last_polled) if st else None,
        "last_status": last_status,
        "error": st.error if st else None,
        "failures": st.failures if st else 0,
        "next_poll": isoformat_z(st.next_poll) if st else None,
        "disabled": st.disabled if st else None,
        "flag": st.flag if st else None,
        "article_failures": st.article_failures if st else 0,
        "article_error": st.article_error if st else None,
    }


def delivery_status(settings: Settings, store: Store, *, limit: int = 20) -> DeliveryStatus:
    """What ``status`` shows about deliveries: pending pairs, retries under way, failures."""
    retrying = [d for d in store.list_deliveries(states=["pending"], limit=limit)
                if d.attempts > 0]
    return {"pending_deliveries": pending_pairs(settings, store),
            "retrying": [delivery_row(d) for d in retrying],
            "failed": [delivery_row(d)
                       for d in store.list_deliveries(states=["failed"], limit=limit)]}


def pending_pairs(settings: Settings, store: Store) -> int:
    """Hit x channel pairs not yet delivered, over every desk (``status``'s
    ``pending_deliveries``): unclaimed hits, and hits held by unsent deliveries."""
    first_seen = store.register_desks(d.name for d in settings.desks)
    return sum(store.count_pending(d.name, channel, rule_ids=d.rule_ids,
                                   since=first_seen[d.name])
               for d in settings.desks for channel in d.channels)


def delivery_row(d: Delivery) -> DeliveryRow:
    """One delivery as JSON (``status``, ``deliveries list``)."""
    return {"id": d.id, "desk": d.desk, "channel": d.channel, "kind": d.kind,
            "state": d.state, "attempts": d.attempts, "created_at": isoformat_z(d.created_at),
            "next_attempt": isoformat_z(d.next_attempt), "sent_at": isoformat_z(d.sent_at),
            "last_error": d.last_error}
