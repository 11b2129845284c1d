"""Delivery: from the store to the desks' channels (store -> digest -> channels).

:class:`Deliverer` owns the delivery protocol; the daemon runs its passes per
(desk, channel) queue on :class:`Senders` (each desk's digest on its schedule,
``send_alerts`` after each poll that found hits and every half minute with
``retry_due``), the ``digest`` command once, in turn. For each desk and channel::

    pending_hits()  ->  create_delivery()  ->  lease  ->  send  ->  mark_sent()
     (not yet claimed    (claims the hits,                         or mark_failed(
      for desk+channel)   committed BEFORE                            permanent, next_attempt)
                          anything is sent)

* A hit goes to a desk's channel at most once: the claim is a unique
  (desk, channel, hit) row, whichever process or instance makes it.
* Never lost: claimed hits stay with their delivery until the channel confirms
  (its server accepted the message). A transient failure is retried by
  ``retry_due`` with exponential backoff (1 min, 2 min, 4 min ... at most 1 h; a
  Retry-After is obeyed), the message rebuilt from the delivery's own hits (the
  ``digest`` command sends them at once, back-off or not: ``retry_due(force=True)``); a
  permanent one is recorded, shown by ``status``, and not retried until the
  operator asks (``deliveries retry``: :meth:`Store.requeue_failed`).
* A crash after the channel confirmed but before ``mark_sent`` leaves the
  delivery leased; when the lease runs out it is sent again: at most one
  duplicate message per crash, carrying the same delivery id.
* An uncertain attempt (the request went out whole, its answer timed out or
  the connection dropped: the receiver may have it) is resent once, after the
  back-off, with the same id; uncertain again, it fails for good ("answered late
  twice"): at most one extra copy per message for a receiver that answers late.
  The count is the delivery payload's ``uncertain``.
* Channels and desks are independent: one failing holds back no other, and one
  answering late or never holds back only its own queue (:func:`queue_lock`
  keeps two passes of one queue in a process apart; the lease, processes).
* An alert claims its hits for that desk and channel, so they are not repeated
  in the next digest, and their stories: a later report of an alerted story is
  not alerted again on that channel; it waits for the digest, as new coverage.
  Alerts are sent only for hits matched in the last hour, and not during the
  desk's quiet hours (those hits wait for the digest).

See docs/delivery.md for the operator's view.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.channels import SPECS, Envelope, Notifier, build_notifiers
from monitor.digest import Digest, build_digest
from monitor.errors import MonitorError, NotifyError, StorageError
from monitor.models import Delivery, Severity, StoredHit, isoformat_z

if TYPE_CHECKING:
    from monitor.rules import RuleSet
    from monitor.settings import DeskConfig, Settings
    from monitor.store import Store

log = logging.getLogger(__name__)

#: How long a sender holds a delivery it is sending. Longer than any one send
#: (the channels' timeouts are 30 s at most by default; a message split in parts
#: takes a few seconds more), short enough that a crashed sender's delivery goes
#: out again soon after a restart.
LEASE = 300.0
#: Hits per message: a bigger backlog (after an outage) goes out in several.
MAX_HITS = 200
#: Only hits matched this recently are alerted: a restart never floods a channel.
ALERT_WINDOW = timedelta(hours=1)
BACKOFF_FIRST = 60.0
BACKOFF_MAX = 3600.0
RETRY_AFTER_MAX = 86400.0  # a Retry-After is obeyed up to a day
#: Pending deliveries a forced retry (the ``digest`` command) takes in one pass.
FORCE_MAX = 1000

#: An uncertain attempt (the receiver took the request, its answer never came)
#: is resent this many times; uncertain again, the delivery fails for good.
UNCERTAIN_RESENDS = 1
UNCERTAIN = "uncertain"  # the payload's count of uncertain attempts
#: Queues sending at once in the daemon (:class:`Senders`): a receiver that
#: answers late holds one worker, never the others' queues.
SEND_WORKERS = 4

# One pass at a time per (desk, channel) queue in a process: the daemon's
# senders run in several threads but share one lease owner, so the lease cannot
# keep two passes of one queue apart. Different queues run in parallel.
_QUEUE_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_QUEUE_LOCKS_GUARD = threading.Lock()


def queue_lock(desk: str, channel: str) -> threading.RLock:
    """The lock of one (desk, channel) queue, shared by every Deliverer of the process
    (a reload makes a new one while the old one may still be sending)."""
    with _QUEUE_LOCKS_GUARD:
        lock = _QUEUE_LOCKS.get((desk, channel))
        if lock is None:
            lock = _QUEUE_LOCKS[(desk, channel)] = threading.RLock()
        return lock


def _payload_int(payload: Mapping[str, object], key: str) -> int:
    value = payload.get(key, 0)
    try:
        return int(value) if isinstance(value, int | str) else 0
    except ValueError:
        return 0


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: what the server asked, else 1m, 2m, 4m... 1h."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), RETRY_AFTER_MAX)
    return min(BACKOFF_FIRST * 2.0 ** max(attempt - 1, 0), BACKOFF_MAX)


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None, timezone: str) -> bool:
    """Is ``now`` inside the quiet hours (desk-local, may wrap midnight: 22:00-07:00)?"""
    if quiet is None or quiet[0] == quiet[1]:
        return False
    local = now.astimezone(ZoneInfo(timezone)).time().replace(tzinfo=None)
    start, end = quiet
    return start <= local < end if start < end else (local >= start or local < end)


def quiet_hours_ended(now: datetime, quiet: tuple[time, time] | None,
                      timezone: str) -> datetime | None:
    """When the last quiet period ended (at or before ``now``), in UTC; None without one."""
    if quiet is None or quiet[0] == quiet[1]:
        return None
    local = now.astimezone(ZoneInfo(timezone))
    end = local.replace(hour=quiet[1].hour, minute=quiet[1].minute, second=0, microsecond=0)
    if end > local:
        end -= timedelta(days=1)
    return end.astimezone(UTC)


@dataclass(slots=True)
class DeliveryReport:
    """What one pass did. ``failed`` counts failed attempts (``permanent`` of them for good)."""

    sent: int = 0
    failed: int = 0
    permanent: int = 0
    hits: int = 0  # hits carried by the deliveries that went out
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def add(self, other: DeliveryReport) -> DeliveryReport:
        self.sent += other.sent
        self.failed += other.failed
        self.permanent += other.permanent
        self.hits += other.hits
        self.errors.extend(other.errors)
        return self

    def summary(self) -> str:
        if not self.sent and not self.failed:
            return "nothing to send"
        text = f"{self.sent} sent ({self.hits} hits)"
        if self.failed:
            retried = self.failed - self.permanent
            notes = [f"{retried} will be retried"] if retried else []
            if self.permanent:
                notes.append(f"{self.permanent} for good: `news-monitor deliveries retry "
                             "--failed` once the cause is fixed")
            text += f", {self.failed} failed ({'; '.join(notes)})"
        return text


def rule_titles(rules: Mapping[str, str] | RuleSet) -> dict[str, str]:
    """Rule id -> title, from a mapping or a :class:`monitor.rules.RuleSet`."""
    if isinstance(rules, Mapping):
        return dict(rules)
    return {r.id: r.title for r in rules.rules}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Deliverer:
    """Sends the desks their digests, alerts and retries. Thread-safe; see module docstring.

    Every pass takes ``desk`` and ``channel`` (None: all): the daemon runs one
    queue per (desk, channel) on :class:`Senders`; two passes over one queue in
    a process never overlap (:func:`queue_lock`), different queues run at once.
    ``options`` go to every channel (:func:`monitor.channels.build_notifiers`),
    which reads the ones it knows. ``stop``, once set, ends a pass before its
    next send.
    """

    def __init__(self, settings: Settings, store: Store, rules: Mapping[str, str] | RuleSet,
                 owner: str = "news-monitor", clock: Callable[[], datetime] = _utcnow, *,
                 options: Mapping[str, Any] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.store = store
        self.titles = rule_titles(rules)
        self.owner = owner
        self.clock = clock
        self.options: dict[str, Any] = {"timeout": settings.delivery_timeout, **(options or {})}
        self.stop = stop

    # -- the passes ---------------------------------------------------------------

    def queues(self, *, alerting: bool = False) -> list[tuple[str, str]]:
        """Every (desk, channel) queue, or those that get alerts now (``alerting``)."""
        now = self.clock()
        return [(d.name, c) for d in self.settings.desks
                for c in (d.channels if not alerting else
                          () if d.alert_min_severity is None
                          or in_quiet_hours(now, d.quiet_hours, d.timezone)
                          else d.alerting_channels)]

    def send_digests(self, desk: str | None = None, channel: str | None = None
                     ) -> DeliveryReport:
        """Each desk (or only ``desk``) one digest of its undelivered hits per channel
        (or on ``channel`` only)."""
        report = DeliveryReport()
        first_seen = self._first_seen(self.clock())
        for d in self._desks(desk):
            for name, notifier in self._notifiers(d, report, channel).items():
                with queue_lock(d.name, name):
                    self._send_new(d, name, notifier, "digest", report, now=self.clock(),
                                   since=first_seen[d.name])
        return report

    def send_alerts(self, desk: str | None = None, channel: str | None = None
                    ) -> DeliveryReport:
        """Hits at or above each desk's ``alert_min_severity``, matched in the last hour
        (of ``desk`` only, on ``channel`` only)."""
        report = DeliveryReport()
        first_seen = self._first_seen(self.clock())
        for d in self._desks(desk):
            if d.alert_min_severity is None or not d.alerting_channels:
                continue
            if channel is not None and channel not in d.alerting_channels:
                continue  # that channel gets these hits in the digest
            for name, notifier in self._notifiers(d, report, channel).items():
                if name not in d.alerting_channels:
                    continue
                with queue_lock(d.name, name):
                    now = self.clock()
                    if in_quiet_hours(now, d.quiet_hours, d.timezone):
                        break  # they wait for the digest
                    # Hits matched during the quiet hours just ended wait for the digest too.
                    after = max([now - ALERT_WINDOW, first_seen[d.name],
                                 quiet_hours_ended(now, d.quiet_hours, d.timezone)
                                 or first_seen[d.name]])
                    self._send_new(d, name, notifier, "alert", report, now=now,
                                   since=first_seen[d.name], min_severity=d.alert_min_severity,
                                   matched_after=after)
        return report

    def retry_due(self, desk: str | None = None, channel: str | None = None, *,
                  force: bool = False) -> DeliveryReport:
        """Resend the pending deliveries whose next attempt is due, rebuilt from their hits
        (of ``desk``, on ``channel``).

        ``force`` (the ``digest`` command: "now, whatever the schedule") takes every
        pending delivery, back-off or not. A lease another sender holds is respected
        either way, so nothing goes out twice; failed-for-good ones still wait for
        ``deliveries retry``.
        """
        now = self.clock()
        report = DeliveryReport()
        if channel is not None:
            claimed = self._claim_queue(desk, channel, now, force=force)
        elif force:
            claimed = self._claim_pending(desk, now)
        else:
            claimed = self.store.claim_due_deliveries(self.owner, now=now, lease=LEASE,
                                                      desk=desk)
        notifiers: dict[str, dict[str, Notifier]] = {}
        for delivery in claimed:
            if self._stopping():
                break  # the rest stay leased: they go out when the lease runs out
            d = self.settings.desk(delivery.desk)
            if d is None or delivery.channel not in d.channels:
                with queue_lock(delivery.desk, delivery.channel):
                    self._give_up_orphan(delivery, report)
                continue
            if d.name not in notifiers:
                notifiers[d.name] = self._notifiers(d, report, channel)
            notifier = notifiers[d.name].get(delivery.channel)
            with queue_lock(d.name, delivery.channel):
                # Read again under the queue's lock: another pass of this process
                # (the same lease owner) may have sent it, or failed it, meanwhile.
                fresh = self._still_pending(delivery.id, force=force)
                if fresh is None:
                    continue
                if notifier is None:  # it could not be built; already reported
                    now = self.clock()
                    self.store.mark_failed(fresh.id, "channel could not be set up",
                                           permanent=False, now=now,
                                           next_attempt=now + timedelta(
                                               seconds=backoff(fresh.attempts + 1)))
                    continue
                self._resend(fresh, d, notifier, report)
        return report

    def give_up_orphans(self) -> DeliveryReport:
        """Fail for good the pending deliveries of desks or channels no longer
        configured (the per-queue retries never look at them)."""
        report = DeliveryReport()
        for delivery in self.store.list_deliveries(states=["pending"], limit=FORCE_MAX):
            d = self.settings.desk(delivery.desk)
            if d is not None and delivery.channel in d.channels:
                continue
            with queue_lock(delivery.desk, delivery.channel):
                if self.store.lease_delivery(delivery.id, self.owner, now=self.clock(),
                                             lease=LEASE):
                    self._give_up_orphan(delivery, report)
        return report

    def preview(self, desk: str) -> Digest:
        """The digest ``desk`` would get now, without claiming or sending anything."""
        d = self.settings.desk(desk)
        if d is None:
            raise ValueError(f"no desk {desk!r}")
        now = self.clock()
        first_seen = self._first_seen(now)
        # The desk's first channel; a desk without one previews every unclaimed hit.
        channel = d.channels[0] if d.channels else ""
        hits = self.store.pending_hits(d.name, channel, rule_ids=d.rule_ids,
                                       since=first_seen[d.name], limit=MAX_HITS)
        return self._digest(d, "digest", hits, now)

    def send_notice(self, text: str, desk: str | None = None, channel: str | None = None
                    ) -> DeliveryReport:
        """An operator notice (a feed failing for days...) to the desks with ``ops_notices``."""
        report = DeliveryReport()
        for d in self._desks(desk):
            if not d.ops_notices:
                continue
            for name, notifier in self._notifiers(d, report, channel).items():
                with queue_lock(d.name, name):
                    now = self.clock()
                    payload = {"text": text}
                    made = self.store.create_delivery(d.name, name, "notice", [], now,
                                                      payload=payload)
                    if made is None or not self.store.lease_delivery(made[0], self.owner,
                                                                     now=now, lease=LEASE):
                        continue
                    digest = build_digest(d.name, [], self.titles, now, kind="notice",
                                          timezone=d.timezone, note=text)
                    self._attempt(made[0], now, 0, d, name, notifier, digest, dict(payload),
                                  report)
        return report

    # -- the steps ----------------------------------------------------------------

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _send_new(self, d: DeskConfig, channel: str, notifier: Notifier, kind: str,
                  report: DeliveryReport, *, now: datetime, since: datetime,
                  min_severity: Severity | None = None,
                  matched_after: datetime | None = None) -> None:
        """Claim the pending hits of one desk and channel, then send them, MAX_HITS a message."""
        first = True
        while not self._stopping():
            hits = self.store.pending_hits(d.name, channel, rule_ids=d.rule_ids, since=since,
                                           min_severity=min_severity,
                                           matched_after=matched_after, limit=MAX_HITS,
                                           new_stories=kind == "alert")
            if not hits and not (first and kind == "digest" and d.send_empty):
                return
            first = False
            made = self.store.create_delivery(d.name, channel, kind, [h.id for h in hits], now)
            if made is None:
                return  # another sender claimed them between our query and our claim
            delivery_id, claimed = made
            if not self.store.lease_delivery(delivery_id, self.owner, now=now, lease=LEASE):
                return  # another instance's retry pass took it over: it sends it
            mine = set(claimed)
            digest = self._digest(d, kind, [h for h in hits if h.id in mine], now)
            ok = self._attempt(delivery_id, now, 0, d, channel, notifier, digest, {}, report)
            if not ok or len(hits) < MAX_HITS:
                return

    def _resend(self, delivery: Delivery, d: DeskConfig, notifier: Notifier,
                report: DeliveryReport) -> None:
        hits = self.store.delivery_hits(delivery.id)
        payload = dict(delivery.payload or {})
        if delivery.kind == "notice":
            digest = build_digest(d.name, [], self.titles, delivery.created_at, kind="notice",
                                  timezone=d.timezone, note=str(payload.get("text", "")))
        elif not hits and not (delivery.kind == "digest" and d.send_empty):
            # Its hits were purged (retention) while it waited: nothing left to say.
            self.store.mark_sent(delivery.id, self.clock())
            return
        else:
            digest = self._digest(d, delivery.kind, hits, delivery.created_at)
        self._attempt(delivery.id, delivery.created_at, delivery.attempts, d, delivery.channel,
                      notifier, digest, payload, report)

    def _attempt(self, delivery_id: int, created_at: datetime, attempts: int, d: DeskConfig,
                 channel: str, notifier: Notifier, digest: Digest, payload: dict[str, object],
                 report: DeliveryReport) -> bool:
        """Send once; record the outcome. Only StorageError escapes.

        ``payload`` is the delivery's, kept whole as progress (parts sent) and
        uncertain attempts are recorded in it."""

        def progress(parts: int) -> None:
            payload["parts_sent"] = parts
            self.store.set_delivery_payload(delivery_id, payload)

        envelope = Envelope(delivery_id, created_at, _payload_int(payload, "parts_sent"), progress)
        try:
            notifier.send(digest, envelope)
        except StorageError:
            raise
        except NotifyError as e:
            if e.uncertain and not e.permanent:
                self._uncertain(delivery_id, attempts, d.name, channel, digest, str(e),
                                payload, report)
            else:
                self._failed(delivery_id, attempts, d.name, channel, digest, str(e),
                             e.permanent, e.retry_after, report)
            return False
        except Exception as e:
            # A bug in one channel must not stop the others; it is retried like an
            # outage and logged with its traceback.
            log.exception("delivery %d (%s/%s): unexpected %s", delivery_id, d.name, channel,
                          type(e).__name__)
            self._failed(delivery_id, attempts, d.name, channel, digest,
                         f"{channel}: internal error: {type(e).__name__}", False, None, report)
            return False
        self.store.mark_sent(delivery_id, self.clock())
        report.sent += 1
        report.hits += len(digest.hit_ids)
        log.info("delivery %d (%s/%s, %s): sent %d hits", delivery_id, d.name, channel,
                 digest.kind, len(digest.hit_ids))
        return True

    def _uncertain(self, delivery_id: int, attempts: int, desk: str, channel: str,
                   digest: Digest, error: str, payload: dict[str, object],
                   report: DeliveryReport) -> None:
        """The receiver may have the message (it took the request, then no answer):
        resent once, after the back-off; uncertain again, failed for good."""
        seen = _payload_int(payload, UNCERTAIN)
        payload[UNCERTAIN] = seen + 1
        self.store.set_delivery_payload(delivery_id, payload)
        if seen >= UNCERTAIN_RESENDS:
            self._failed(delivery_id, attempts, desk, channel, digest,
                         f"answered late twice ({error}): check the receiver; "
                         f"`news-monitor deliveries retry {delivery_id}` sends it again",
                         True, None, report)
        else:
            self._failed(delivery_id, attempts, desk, channel, digest,
                         f"{error}; outcome unknown: resent once", False, None, report)

    def _failed(self, delivery_id: int, attempts: int, desk: str, channel: str, digest: Digest,
                error: str, permanent: bool, retry_after: float | None,
                report: DeliveryReport) -> None:
        now = self.clock()
        next_attempt = None if permanent else now + timedelta(
            seconds=backoff(attempts + 1, retry_after))
        self.store.mark_failed(delivery_id, error, permanent=permanent,
                               next_attempt=next_attempt, now=now)
        report.failed += 1
        report.errors.append(f"{desk}/{channel}: {error}")
        if permanent:
            report.permanent += 1
            log.error("delivery %d (%s/%s, %s, %d hits) failed for good: %s", delivery_id, desk,
                      channel, digest.kind, len(digest.hit_ids), error)
        else:
            log.warning("delivery %d (%s/%s, %s, %d hits) failed, attempt %d, retry at %s: %s",
                        delivery_id, desk, channel, digest.kind, len(digest.hit_ids),
                        attempts + 1, isoformat_z(next_attempt), error)

    def _give_up_orphan(self, delivery: Delivery, report: DeliveryReport) -> None:
        self._give_up(delivery, f"desk {delivery.desk} no longer has the {delivery.channel} "
                                "channel", report)

    def _give_up(self, delivery: Delivery, why: str, report: DeliveryReport) -> None:
        self.store.mark_failed(delivery.id, why, permanent=True, next_attempt=None,
                               now=self.clock())
        report.failed += 1
        report.permanent += 1
        report.errors.append(f"{delivery.desk}/{delivery.channel}: {why}")
        log.error("delivery %d (%s/%s): %s; not retried", delivery.id, delivery.desk,
                  delivery.channel, why)

    # -- helpers --------------------------------------------------------------------

    def _claim_queue(self, desk: str | None, channel: str, now: datetime, *,
                     force: bool) -> list[Delivery]:
        """The pending deliveries of one queue, due ones only unless ``force``, oldest
        first; each is leased (compare-and-set) under the queue's lock as it is sent."""
        pending = self.store.list_deliveries(states=["pending"], desk=desk, limit=FORCE_MAX)
        return sorted((x for x in pending if x.channel == channel and (
            force or x.next_attempt is None or x.next_attempt <= now)), key=lambda x: x.id)

    def _still_pending(self, delivery_id: int, *, force: bool) -> Delivery | None:
        """The delivery as it is now, leased to us, if it still waits to be sent."""
        now = self.clock()
        if not self.store.lease_delivery(delivery_id, self.owner, now=now, lease=LEASE):
            return None  # another instance holds it
        rows = self.store.list_deliveries(ids=[delivery_id], states=["pending"], limit=1)
        if not rows:
            return None  # sent or failed for good meanwhile
        fresh = rows[0]
        if not force and fresh.next_attempt is not None and fresh.next_attempt > now:
            return None  # it just failed again: it waits for its back-off
        return fresh

    def _claim_pending(self, desk: str | None, now: datetime) -> list[Delivery]:
        """Every pending delivery (of ``desk``), oldest first, leased to us: the due
        ones as the retry pass claims them, then those backing off, with the
        compare-and-set lease of a new delivery. One another sender holds is left to it."""
        claimed = self.store.claim_due_deliveries(self.owner, now=now, lease=LEASE, desk=desk)
        taken = {d.id for d in claimed}
        pending = self.store.list_deliveries(states=["pending"], desk=desk, limit=FORCE_MAX)
        for delivery in sorted(pending, key=lambda x: x.id):
            if delivery.id in taken or not self.store.lease_delivery(
                    delivery.id, self.owner, now=now, lease=LEASE):
                continue
            # Read again under our lease: a sender that just let it go may have
            # recorded progress (parts sent) since it was listed.
            claimed += self.store.list_deliveries(ids=[delivery.id], states=["pending"],
                                                  limit=1)
        return sorted(claimed, key=lambda x: x.id)

    def _digest(self, d: DeskConfig, kind: str, hits: list[StoredHit], now: datetime
                ) -> Digest:
        return build_digest(d.name, hits, self.titles, now, kind=kind, timezone=d.timezone,
                            base_url=self.settings.web_base_url)

    def _first_seen(self, now: datetime) -> dict[str, datetime]:
        return self.store.register_desks((d.name for d in self.settings.desks), now)

    def _desks(self, name: str | None) -> list[DeskConfig]:
        if name is None:
            return list(self.settings.desks)
        d = self.settings.desk(name)
        if d is None:
            raise ValueError(f"no desk {name!r}")
        return [d]

    def _notifiers(self, d: DeskConfig, report: DeliveryReport, channel: str | None = None
                   ) -> dict[str, Notifier]:
        """The desk's notifiers (only ``channel``'s, when given), by channel name."""
        try:
            if channel is None:
                return build_notifiers(d, self.settings, self.options)
            return {s.name: s.notifier(d, self.settings, self.options)
                    for s in SPECS if s.name == channel and s.name in d.channel_options}
        except MonitorError as e:
            report.failed += 1
            report.errors.append(f"{d.name}: {e}")
            log.error("desk %s: channels not set up: %s", d.name, e)
            return {}



class Senders:
    """The daemon's senders: each (desk, channel) queue sends on its own.

    ``submit(key, name, work)`` hands a pass (``name``: "alerts", "retries",
    "digest"...) to the queue ``key`` and returns at once. At most one pass per
    queue runs at a time, at most ``workers`` queues at once; a pass submitted
    while the same one waits is coalesced with it (one run covers both), and a
    queue that ran goes to the back of the line, so a slow receiver holds one
    worker and never the other queues. Workers are daemon threads, started as
    work comes: an abandoned send never keeps the process from exiting (its
    lease runs out and it goes out once more later, as after a crash).
    """

    def __init__(self, workers: int = SEND_WORKERS) -> None:
        self.workers = max(1, workers)
        self._cond = threading.Condition()
        self._waiting: dict[tuple[str, str], dict[str, Callable[[], object]]] = {}
        self._ready: deque[tuple[str, str]] = deque()
        self._queued: set[tuple[str, str]] = set()  # in _ready or running
        self._running: set[tuple[str, str]] = set()
        self._threads: list[threading.Thread] = []
        self._idle_workers = 0
        self._closed = False

    def submit(self, key: tuple[str, str], name: str, work: Callable[[], object]) -> None:
        """Queue ``work`` on ``key``; a ``name`` already waiting there is replaced."""
        with self._cond:
            if self._closed:
                return
            self._waiting.setdefault(key, {})[name] = work
            if key in self._queued:
                return  # waiting in line, or running: it runs (again) after
            self._queued.add(key)
            self._ready.append(key)
            if not self._idle_workers and len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"sender-{len(self._threads) + 1}")
                self._threads.append(thread)
                thread.start()
            self._cond.notify()

    def busy(self) -> set[tuple[str, str]]:
        """The queues sending now."""
        with self._cond:
            return set(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing runs or waits (at most ``timeout`` s); True if idle."""
        deadline = monotonic() + timeout
        with self._cond:
            while self._queued:
                left = deadline - monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float) -> bool:
        """Take no more work, drop what has not started, wait ``timeout`` s for the
        passes under way. True if none is left running."""
        deadline = monotonic() + timeout
        with self._cond:
            self._closed = True
            for key in self._ready:
                self._queued.discard(key)
            self._ready.clear()
            self._waiting.clear()
            self._cond.notify_all()
            while self._running:
                left = deadline - monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle_workers += 1
                while not self._ready and not self._closed:
                    self._cond.wait()
                self._idle_workers -= 1
                if not self._ready:
                    return  # closed
                key = self._ready.popleft()
                passes = self._waiting.pop(key, {})
                self._running.add(key)
            try:
                for name, work in passes.items():
                    if self._closed:
                        break
                    try:
                        work()
                    except Exception:
                        # One pass's bug must not kill the worker or the queue.
                        log.exception("%s/%s: %s failed", key[0], key[1], name)
            finally:
                with self._cond:
                    self._running.discard(key)
                    if self._waiting.get(key) and not self._closed:
                        self._ready.append(key)  # more came meanwhile: back of the line
                    else:
                        self._queued.discard(key)
                        self._waiting.pop(key, None)
                    self._cond.notify_all()
