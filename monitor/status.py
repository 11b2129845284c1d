"""The state of a deployment, read from the store as one JSON-ready document:
each configured feed's polling state, the stored totals, the deliveries still
pending, being retried or failed for good, and the daemons running.

``news-monitor status`` prints it (as a table, or as this document in JSON),
``deliveries list --format json`` prints :func:`delivery_row`, and the web view
will show the same document. Read-only: the caller opens and closes the store,
and any :class:`monitor.errors.StorageError` comes through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from monitor.models import isoformat_z

if TYPE_CHECKING:
    from monitor.models import Delivery, FeedState
    from monitor.settings import DeskConfig, FeedConfig, Settings
    from monitor.store import Store

__all__ = ["DeliveryRow", "DeliveryStatus", "FeedRow", "StatusDocument", "delivery_row",
           "delivery_status", "pending_pairs", "status_document"]


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


class StatusDocument(DeliveryStatus):
    """The whole state: :class:`DeliveryStatus` and the feeds, totals and daemons."""

    feeds: list[FeedRow]
    items: int
    hits: int
    daemons: list[dict[str, Any]]  # as each daemon publishes itself (owner, started, rules...)


def status_document(settings: Settings, store: Store, *, limit: int = 20) -> StatusDocument:
    """The state of the configured feeds and desks in ``store``; at most ``limit``
    deliveries of each of the retrying and failed lists."""
    states = store.feed_states()
    counts = store.item_counts()
    totals = store.totals()
    daemons = [d for d in store.states("daemon:").values() if d]
    deliveries = delivery_status(settings, store, limit=limit)
    return {"feeds": [_feed_row(f, states.get(f.url), counts.get(f.url, 0))
                      for f in settings.feeds],
            "items": totals["items"], "hits": totals["hits"],
            "pending_deliveries": deliveries["pending_deliveries"],
            "retrying": deliveries["retrying"], "failed": deliveries["failed"],
            "daemons": daemons}


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
    return sum(store.count_pending(d.name, channel, rule_ids=_rule_ids(d),
                                   since=first_seen[d.name])
               for d in settings.desks for channel in d.channels)


def _rule_ids(desk: DeskConfig) -> list[str] | None:
    # As the Deliverer selects a desk's hits (monitor.deliver), so that what is
    # counted here is what it would send.
    return None if "*" in desk.rules else list(desk.rules)


def delivery_row(d: Delivery) -> DeliveryRow:
    """One delivery as JSON (``status``, ``deliveries list``)."""
    return {"id": d.id, "desk": d.desk, "channel": d.channel, "kind": d.kind,
            "state": d.state, "attempts": d.attempts, "created_at": isoformat_z(d.created_at),
            "next_attempt": isoformat_z(d.next_attempt), "sent_at": isoformat_z(d.sent_at),
            "last_error": d.last_error}
