"""Deliver notification rows: the dispatcher, the claim, the send, and operations.

The protocol, end to end:

1. A change commits a ``pending`` row with a due time (``services``).
2. The dispatcher (beat, every minute; one at a time under a database lease)
   puts back to ``pending`` the rows whose worker died while ``sending``, then
   publishes one deliver task per chunk of due ``pending`` rows
   (``NOTIFY_DELIVER_BATCH``) and stamps the rows ``dispatched_at`` so that
   they are not published again while they wait in the queue. If the broker
   is down, nothing is stamped and the next run retries.
3. The deliver task takes its rows one by one: it claims each with a
   conditional UPDATE (pending → sending) and goes on only if it won, so a
   task delivered twice sends once. It renders, sends, and marks the row
   ``sent``; on a transient error it puts that row back to ``pending`` and
   asks for it alone to be retried a little later; after the last attempt
   the row is ``failed``, for a coordinator to resend. Rows of one task share
   the meeting, agenda and SMTP connection, never a claim or an outcome.

Unlike services, these functions commit: the claim must be durable before
the message leaves, and the outcome right after, or a crash in between would
send twice. They run in a task or a CLI command, never in a web request.
"""
from __future__ import annotations

import enum
import logging
import os
import smtplib
import socket
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.utils import parseaddr

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit.services import record
from mdt.auth.models import User
from mdt.errors import ConflictError, NotFoundError
from mdt.extensions import db
from mdt.notifications import broker
from mdt.notifications.dispatch_models import DispatcherRun, Lease
from mdt.notifications.mail import PermanentMailError, TransientMailError, get_backend
from mdt.notifications.models import Notification, NotificationStatus

log = logging.getLogger(__name__)

Status = NotificationStatus

#: A ``sending`` row claimed longer ago than this belongs to a dead worker.
#: Far longer than one send can take (the SMTP timeout is seconds).
CLAIM_LEASE = timedelta(minutes=10)
#: A published row still ``pending`` after this is published again (the
#: message was lost: a broker restarted without persistence, a worker killed).
DISPATCH_LEASE = timedelta(minutes=10)
#: How long one dispatcher may hold the single-dispatcher lease per batch.
DISPATCHER_LEASE = timedelta(minutes=5)
DISPATCHER_LEASE_NAME = "notification-dispatcher"
BATCH_SIZE = 500
#: ``status`` warns when the last dispatcher run is older than this.
DISPATCHER_STALE_AFTER = timedelta(minutes=5)
KEEP_RUNS = timedelta(days=7)

#: Publishes one deliver task for a chunk of row ids.
Publisher = Callable[[list[int]], None]

#: True inside ``deliver_batch``: outcomes commit with the next row's claim.
_in_batch: ContextVar[bool] = ContextVar("mdt_delivery_in_batch", default=False)


# --- the single-dispatcher lease -------------------------------------------------

def acquire_lease(name: str, holder: str, duration: timedelta) -> bool:
    """Take or extend the named lease for ``holder``; return whether we hold it."""
    now = clock.now()
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(Lease).values(name=name, holder=None, expires_at=now)
                       .on_conflict_do_nothing(index_elements=["name"]))
    # Atomic on both databases: PostgreSQL re-checks the WHERE after waiting
    # for a concurrent updater's row lock; SQLite has one writer at a time.
    won = db.session.execute(
        update(Lease).where(Lease.name == name,
                            or_(Lease.expires_at <= now, Lease.holder == holder))
        .values(holder=holder, expires_at=now + duration)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    return won


def release_lease(name: str, holder: str) -> None:
    """Give the lease back early so the next run need not wait for it to expire."""
    db.session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                       .values(holder=None, expires_at=clock.now())
                       .execution_options(synchronize_session=False))
    db.session.commit()


# --- the dispatcher --------------------------------------------------------------

@dataclass
class DispatchResult:
    """What one dispatcher pass did (``ran`` is False when another one holds the lease)."""

    ran: bool
    released: int = 0
    published: int = 0
    unpublished: int = 0
    error: str | None = None


def publish_deliver(notification_ids: list[int]) -> None:
    """Publish one deliver task for a chunk of rows, by task name."""
    broker.publish(broker.DELIVER_TASK, list(notification_ids))


def dispatch(publish: Publisher | None = None, *, holder: str | None = None) -> DispatchResult:
    """Run one dispatcher pass: release stale claims, publish every due row, record the run."""
    publish = publish or publish_deliver
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not acquire_lease(DISPATCHER_LEASE_NAME, holder, DISPATCHER_LEASE):
        log.info("another dispatcher holds the lease; skipping this run")
        return DispatchResult(ran=False)
    run = DispatcherRun(started_at=clock.now(), holder=holder)
    db.session.add(run)
    db.session.commit()
    result = DispatchResult(ran=True)
    try:
        result.released = release_stale_claims()
        _publish_due(publish, holder, result)
    finally:
        db.session.rollback()
        _record_run(run.id, result)
        release_lease(DISPATCHER_LEASE_NAME, holder)
    return result


def release_stale_claims() -> int:
    """Put ``sending`` rows whose worker died (claim older than the lease) back to pending."""
    cutoff = clock.now() - CLAIM_LEASE
    released = db.session.execute(
        update(Notification)
        .where(Notification.status == Status.SENDING, Notification.claimed_at < cutoff)
        .values(status=Status.PENDING, claimed_at=None, dispatched_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if released:
        log.warning("released %d notifications claimed by a worker that did not finish",
                    released)
    return released


def due_batch(limit: int = BATCH_SIZE) -> list[int]:
    """Return ids of due ``pending`` rows not published within the dispatch lease, oldest first."""
    now = clock.now()
    return list(db.session.scalars(
        select(Notification.id)
        .where(Notification.status == Status.PENDING, Notification.due_at <= now,
               or_(Notification.dispatched_at.is_(None),
                   Notification.dispatched_at < now - DISPATCH_LEASE))
        .order_by(Notification.due_at, Notification.id)
        .limit(limit)
    ))


def _publish_due(publish: Publisher, holder: str, result: DispatchResult) -> None:
    size = max(1, int(current_app.config["NOTIFY_DELIVER_BATCH"]))
    while ids := due_batch():
        published: list[int] = []
        try:
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                publish(chunk)
                published.extend(chunk)
        except Exception as exc:  # kombu raises several kinds when the broker is down
            result.unpublished += len(ids) - len(published)
            result.error = f"publishing failed: {exc!r}"[:1000]
            log.warning("broker unavailable, %d due notifications wait for the next run: %r",
                        len(ids) - len(published), exc)
        _mark_dispatched(published)
        result.published += len(published)
        db.session.commit()
        if result.error or not acquire_lease(DISPATCHER_LEASE_NAME, holder, DISPATCHER_LEASE):
            return


def _mark_dispatched(ids: list[int]) -> None:
    if ids:
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == Status.PENDING)
            .values(dispatched_at=clock.now())
            .execution_options(synchronize_session=False))


def _record_run(run_id: int, result: DispatchResult) -> None:
    now = clock.now()
    db.session.execute(
        update(DispatcherRun).where(DispatcherRun.id == run_id)
        .values(finished_at=now, released=result.released, published=result.published,
                unpublished=result.unpublished, error=result.error)
        .execution_options(synchronize_session=False))
    db.session.execute(sa.delete(DispatcherRun).where(DispatcherRun.started_at < now - KEEP_RUNS))
    db.session.commit()


# --- one delivery ----------------------------------------------------------------

class Outcome(enum.StrEnum):
    SKIPPED = "skipped"      # another task has it, or it is no longer pending or due
    SENT = "sent"            # e-mailed
    IN_APP = "in_app"        # no e-mail wanted: shown in the notification centre only
    CANCELLED = "cancelled"  # no longer relevant, or the recipient is deactivated
    RETRY = "retry"          # transient error: back to pending, retry after ``retry_in``
    FAILED = "failed"        # given up: shown to coordinators, who may resend


@dataclass
class DeliveryResult:
    outcome: Outcome
    retry_in: float | None = None
    error: str | None = field(default=None, repr=False)


def claim(notification_id: int) -> bool:
    """Claim a due pending row for this worker; return whether we won it (commits)."""
    now = clock.now()
    won = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == Status.PENDING,
               # A row moved later (meeting rescheduled) after it was published waits.
               Notification.due_at <= now)
        .values(status=Status.SENDING, claimed_at=now, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    return won


def deliver(notification_id: int) -> DeliveryResult:
    """Claim, render and send one notification; record the outcome on its row."""
    if not claim(notification_id):
        return DeliveryResult(Outcome.SKIPPED)
    notification = db.session.scalars(
        # Roles are loaded only by the kinds that need them (one query saved).
        select(Notification).options(joinedload(Notification.recipient)
                                     .lazyload(User.role_rows))
        .where(Notification.id == notification_id)
        # Fresh even in a batch, where committed objects are not expired.
        .execution_options(populate_existing=True)).one()
    if not notification.recipient.is_active:
        return _finish(notification, Status.CANCELLED, Outcome.CANCELLED,
                       note="recipient deactivated")
    if not notification.send_email:
        return _finish(notification, Status.SENT, Outcome.IN_APP)
    try:
        message = _render(notification)
    except Exception as exc:  # a rendering bug: retrying the same input will not help
        log.exception("rendering notification %d failed", notification_id)
        db.session.rollback()
        return _fail(notification_id, f"rendering failed: {exc!r}")
    if message is None:
        return _finish(notification, Status.CANCELLED, Outcome.CANCELLED,
                       note="no longer relevant when due")
    try:
        get_backend(current_app.config).send(message, key=str(notification_id))
    except PermanentMailError as exc:
        return _fail(notification_id, str(exc))
    except (TransientMailError, smtplib.SMTPException, OSError) as exc:
        return _retry_or_fail(notification, f"{type(exc).__name__}: {exc}")
    return _finish(notification, Status.SENT, Outcome.SENT)


def deliver_batch(notification_ids: list[int]) -> dict[int, DeliveryResult]:
    """Deliver the rows of one task in turn: each claimed, sent and recorded on its own."""
    from mdt.notifications.render import shared_loads

    session = db.session()
    expire = session.expire_on_commit
    # The meeting and agenda loaded for the first row serve the next ones:
    # keep them loaded across the per-row commits (for this batch only).
    session.expire_on_commit = False
    token = _in_batch.set(True)
    try:
        with shared_loads():
            results = {i: deliver(i) for i in dict.fromkeys(notification_ids)}
        db.session.commit()  # the last row's outcome
        return results
    finally:
        _in_batch.reset(token)
        session.expire_on_commit = expire


def _render(notification: Notification) -> Message | None:
    from mdt.notifications.render import build_message  # written by the content feature

    message = build_message(notification)
    if message is None:
        return None
    config = current_app.config
    if message["From"] != config["MAIL_SENDER"]:
        del message["From"]
        message["From"] = config["MAIL_SENDER"]
    if "To" not in message:
        message["To"] = notification.recipient.email
    if "Message-ID" not in message:
        # Stable across retries, so a receiving system can recognise a repeat.
        domain = parseaddr(config["MAIL_SENDER"])[1].rpartition("@")[2] or "mdt.local"
        message["Message-ID"] = f"<notification-{notification.id}@{domain}>"
    message["X-MDT-Notification"] = str(notification.id)
    return message


def _record_outcome() -> None:
    """Make a row's outcome durable: now, or in a batch with the next row's claim.

    The next claim commits at once, before anything else is sent, so the
    outcome is no less safe; the batch commits the last one at its end.
    """
    if _in_batch.get():
        db.session.flush()
    else:
        db.session.commit()


def _finish(notification: Notification, status: Status, outcome: Outcome,
            note: str | None = None) -> DeliveryResult:
    values = {"status": status, "claimed_at": None, "last_error": note}
    if status == Status.SENT:
        values["sent_at"] = clock.now()
    # One UPDATE, without the unit of work's bookkeeping.
    db.session.execute(update(Notification).where(Notification.id == notification.id)
                       .values(**values).execution_options(synchronize_session="evaluate"))
    _record_outcome()
    return DeliveryResult(outcome)


def _fail(notification_id: int, error: str) -> DeliveryResult:
    db.session.execute(
        update(Notification).where(Notification.id == notification_id)
        .values(status=Status.FAILED, claimed_at=None, last_error=error[:2000])
        .execution_options(synchronize_session=False))
    _record_outcome()
    log.error("notification %d failed: %s", notification_id, error)
    return DeliveryResult(Outcome.FAILED, error=error)


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from the first delay, capped.

    The cap stays below the dispatch lease, so the dispatcher does not publish
    the row again while its retry waits, and far below the broker's
    visibility timeout, so Redis never hands a waiting retry to a second worker.
    """
    config = current_app.config
    cap = min(float(config["NOTIFY_RETRY_MAX_DELAY"]), DISPATCH_LEASE.total_seconds() / 2)
    return min(float(config["NOTIFY_RETRY_DELAY"]) * 2 ** max(attempts - 1, 0), cap)


def _retry_or_fail(notification: Notification, error: str) -> DeliveryResult:
    if notification.attempts > int(current_app.config["NOTIFY_MAX_RETRIES"]):
        return _fail(notification.id, f"gave up after {notification.attempts} attempts: {error}")
    notification.status = Status.PENDING
    notification.claimed_at = None
    # Counts as published: the retry task is on its way.
    notification.dispatched_at = clock.now()
    notification.last_error = error[:2000]
    _record_outcome()
    log.warning("notification %d: attempt %d failed, retrying: %s",
                notification.id, notification.attempts, error)
    return DeliveryResult(Outcome.RETRY, retry_in=retry_delay(notification.attempts),
                          error=error)


# --- operations: status and resend ------------------------------------------------

@dataclass
class DeliveryStatus:
    counts: dict[str, int]
    oldest_pending_due_at: datetime | None
    last_run: DispatcherRun | None

    @property
    def dispatcher_stale(self) -> bool:
        """Whether the dispatcher has not run for ``DISPATCHER_STALE_AFTER`` (or ever)."""
        return (self.last_run is None
                or self.last_run.started_at < clock.now() - DISPATCHER_STALE_AFTER)


def delivery_status() -> DeliveryStatus:
    """Count notifications by status; find the oldest pending one and the last dispatcher run."""
    counts = {status.value: 0 for status in Status}
    for status, count in db.session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)):
        counts[Status(status).value] = count
    oldest = db.session.scalar(select(func.min(Notification.due_at))
                               .where(Notification.status == Status.PENDING))
    if oldest is not None and oldest.tzinfo is None:  # min() bypasses the column type
        oldest = Notification.due_at.type.process_result_value(oldest, db.engine.dialect)
    last_run = db.session.scalars(
        select(DispatcherRun).order_by(DispatcherRun.started_at.desc(), DispatcherRun.id.desc())
        .limit(1)).first()
    return DeliveryStatus(counts, oldest, last_run)


def failed_notifications(limit: int = 200) -> list[Notification]:
    """Return the most recent failed notifications with their recipients."""
    return list(db.session.scalars(
        select(Notification).options(joinedload(Notification.recipient))
        .where(Notification.status == Status.FAILED)
        .order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(limit)))


RESENDABLE = {Status.FAILED, Status.CANCELLED, Status.SENT}


def resend(notification_id: int, *, actor_id: int | None = None) -> Notification:
    """Queue a failed, cancelled or sent notification again (attempts reset, audited)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        raise NotFoundError(f"There is no notification {notification_id}.")
    if notification.status not in RESENDABLE:
        raise ConflictError(f"Notification {notification_id} is {notification.status.value}; "
                            "only failed, cancelled or sent ones can be resent.")
    previous = notification.status
    notification.status = Status.PENDING
    notification.attempts = 0
    notification.claimed_at = None
    notification.dispatched_at = None
    notification.last_error = None
    notification.sent_at = None
    # A notification due in the future keeps its time; an old one goes next run.
    record("notification.resend", f"Notification {notification.id} queued again",
           obj=notification, case_id=notification.case_id,
           data={"status": [previous.value, Status.PENDING.value]}, actor_id=actor_id)
    db.session.flush()
    return notification
