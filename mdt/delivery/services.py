"""One delivery: claim a row, render it, send it, record the outcome or retry.

Every step commits at once: the claim before anything is sent, the outcome
the moment the SMTP server has answered. The only window in which a row can
be sent twice is between the server's acceptance and that commit
(milliseconds): a worker killed then leaves the row ``sending``, and it is
sent again once its claim lease has passed.
"""
from __future__ import annotations

import enum
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.auth.models import User
from mdt.db import rowcount
from mdt.delivery import mail, retry
from mdt.delivery.mail import PermanentMailError, TransientMailError, get_backend
from mdt.extensions import db
from mdt.notifications import render
from mdt.notifications.models import Notification, NotificationStatus

log = logging.getLogger(__name__)

#: Short name: the statuses a row moves through.
Status = NotificationStatus
#: A published row still ``pending`` and not taken by a worker after this is
#: published again (the message was lost: a broker restarted without
#: persistence). Long, so that a queue that is merely long is not flooded.
DISPATCH_LEASE = timedelta(minutes=10)
#: The claim lease: the attempts one send may take (``mail.SMTPBackend``: the
#: kept-open connection, then a new one), with a margin for rendering and the
#: database (seconds).
CLAIM_LEASE_ATTEMPTS = 3
CLAIM_LEASE_MARGIN = 30.0


def claim_lease() -> timedelta:
    """Return how long a worker holds a row it claimed, or a batch it took, without news.

    Sized from ``MAIL_TIMEOUT`` (60 s with the default 10 s), so that rows
    stranded by a killed worker go out again within a minute or two, while a
    live worker always finishes a send, or renews, well within it.
    """
    timeout = float(current_app.config["MAIL_TIMEOUT"])
    return timedelta(seconds=CLAIM_LEASE_ATTEMPTS * timeout + CLAIM_LEASE_MARGIN)


class Outcome(enum.StrEnum):
    """What one delivery attempt did with its row."""

    SKIPPED = "skipped"      # another task has it, or it is no longer pending or due
    SENT = "sent"            # e-mailed
    IN_APP = "in_app"        # no e-mail wanted: shown in the notification centre only
    CANCELLED = "cancelled"  # no longer relevant, or the recipient is deactivated
    RETRY = "retry"          # transient error: back to pending until ``retry_at``
    FAILED = "failed"        # given up: shown to coordinators, who may resend


@dataclass
class DeliveryResult:
    """The outcome of one delivery, and when it is tried again after a transient error."""

    outcome: Outcome
    retry_at: datetime | None = None
    error: str | None = field(default=None, repr=False)
    #: Sent after failed attempts: the server answers again.
    recovered: bool = False


def claim(notification_id: int) -> bool:
    """Claim a due pending row for this worker; return whether we won it (commits)."""
    now = clock.now()
    won = rowcount(db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == Status.PENDING,
               # A row moved later (meeting rescheduled) after it was published waits.
               Notification.due_at <= now)
        .values(status=Status.SENDING, claimed_at=now, lease_expires_at=now + claim_lease(),
                attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False)
    )) == 1
    db.session.commit()
    return won


def hold_batch(notification_ids: Sequence[int]) -> None:
    """Take a batch's rows still waiting for this worker: their lease is the claim lease now.

    The dispatcher's 10-minute lease only keeps a queued row from being
    published twice; once a worker has the task, the rows after the one it
    sends would wait for that long if it died. Holding them for the claim
    lease, renewed as the batch goes on, lets them go out within minutes.
    """
    if notification_ids:
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(list(notification_ids)),
                   Notification.status == Status.PENDING)
            .values(lease_expires_at=clock.now() + claim_lease())
            .execution_options(synchronize_session=False))


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
        outgoing = _build(notification)
    except Exception as exc:  # bad data or a rendering bug: the same input will fail again
        log.exception("notification %d: the message could not be built", notification_id)
        db.session.rollback()
        return _fail(notification_id, f"the message could not be built: {exc!r}")
    if outgoing is None:
        return _finish(notification, Status.CANCELLED, Outcome.CANCELLED,
                       note="no longer relevant when due")
    try:
        get_backend(current_app.config).send(outgoing, key=str(notification_id))
    except PermanentMailError as exc:
        return _fail(notification_id, str(exc))
    except (TransientMailError, smtplib.SMTPException, OSError) as exc:
        return _retry_later(notification, f"{type(exc).__name__}: {exc}")
    return _finish(notification, Status.SENT, Outcome.SENT)


def deliver_batch(notification_ids: list[int]) -> dict[int, DeliveryResult]:
    """Deliver the rows of one task in turn: each claimed, sent and recorded on its own."""
    ids = list(dict.fromkeys(notification_ids))
    session = db.session()
    expire = session.expire_on_commit
    # The meeting and agenda loaded for the first row serve the next ones:
    # keep them loaded across the per-row commits (for this batch only).
    session.expire_on_commit = False
    try:
        with render.shared_loads():
            held_at: datetime | None = None
            results = {}
            for position, notification_id in enumerate(ids):
                held_at = _keep_holding(ids[position:], held_at)
                results[notification_id] = _deliver_in_batch(notification_id)
        if any(result.recovered for result in results.values()):
            _bring_retries_forward()
        return results
    finally:
        session.expire_on_commit = expire


def _bring_retries_forward() -> None:
    """Bring the waiting retries to the next run: a retry got through, the server answers.

    Once per batch at most, and only after a retried row was sent (a row sent
    at its first attempt says nothing about the others' failures).
    """
    moved = retry.bring_forward(clock.now())
    db.session.commit()
    log.info("a retried notification was sent: %d waiting retries brought forward", moved)


def _keep_holding(rest: list[int], held_at: datetime | None) -> datetime | None:
    """Hold the rest of the batch at its start, and again once a third of the lease has gone.

    The hold is committed with the next claim (no commit of its own).
    """
    now = clock.now()
    if held_at is not None and now - held_at < claim_lease() / 3:
        return held_at
    hold_batch(rest)
    return now


def _deliver_in_batch(notification_id: int) -> DeliveryResult:
    """Deliver one row of a batch; an unexpected error fails that row, and the batch goes on.

    A database error is not caught: the outcome could not be recorded anyway,
    and the row's claim lease hands it to the next dispatcher run.
    """
    try:
        return deliver(notification_id)
    except SQLAlchemyError:
        raise
    except Exception as exc:
        log.exception("notification %d: delivery failed", notification_id)
        db.session.rollback()
        return _fail(notification_id, f"delivery failed: {exc!r}")


def _build(notification: Notification) -> mail.Outgoing | None:
    """Build the row's e-mail, tagged with the row's id, written once; None if no longer relevant.

    The envelope is the configured sender and the recipient's address, never
    taken from the headers.
    """
    message = render.build_message(notification)
    if message is None:
        return None
    message["X-MDT-Notification"] = str(notification.id)
    return mail.prepare(message, sender=parseaddr(current_app.config["MAIL_SENDER"])[1],
                        recipients=(notification.recipient.email,))


def _record(notification_id: int, **values: Any) -> None:
    """Write a claimed row's outcome and commit it at once (one UPDATE, no unit of work).

    Only a row still ``sending`` is changed: one whose lease passed and that
    another worker took since keeps that worker's outcome.
    """
    db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == Status.SENDING)
        .values({"claimed_at": None, "lease_expires_at": None, **values})
        .execution_options(synchronize_session=False))
    db.session.commit()


def _finish(notification: Notification, status: Status, outcome: Outcome,
            note: str | None = None) -> DeliveryResult:
    values: dict[str, Any] = {"status": status, "last_error": note, "failing_since": None}
    if status == Status.SENT:
        values["sent_at"] = clock.now()
    _record(notification.id, **values)
    return DeliveryResult(outcome, recovered=(outcome == Outcome.SENT
                                              and notification.failing_since is not None))


def _fail(notification_id: int, error: str) -> DeliveryResult:
    _record(notification_id, status=Status.FAILED, last_error=error[:2000])
    log.error("notification %d failed: %s", notification_id, error)
    return DeliveryResult(Outcome.FAILED, error=error)


def _retry_later(notification: Notification, error: str) -> DeliveryResult:
    """Put the row back to pending until its next attempt, or fail it past the horizon."""
    now = clock.now()
    plan = retry.plan(notification.attempts, notification.failing_since, now)
    if plan.at is None:
        span = retry.describe(now - plan.failing_since)
        return _fail(notification.id, f"gave up after {notification.attempts} attempts over "
                                      f"{span}: {error}")
    _record(notification.id, status=Status.PENDING, next_attempt_at=plan.at,
            failing_since=plan.failing_since, last_error=error[:2000])
    log.warning("notification %d: attempt %d failed, next at %s: %s",
                notification.id, notification.attempts, plan.at.isoformat(), error)
    return DeliveryResult(Outcome.RETRY, retry_at=plan.at, error=error)
