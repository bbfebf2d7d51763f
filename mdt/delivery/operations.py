"""Operations on delivery: status counts, rows retrying or failed, and resending them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit.services import record
from mdt.auth.models import User
from mdt.db import get_or_404
from mdt.delivery import broker
from mdt.delivery.models import DispatcherRun
from mdt.delivery.retry import RETRYING
from mdt.delivery.services import Status
from mdt.errors import ConflictError
from mdt.extensions import db
from mdt.notifications.models import Notification

#: ``status`` warns when the last dispatcher run is older than this.
DISPATCHER_STALE_AFTER = timedelta(minutes=5)


@dataclass
class Retrying:
    """The pending rows waiting for another attempt after a failed one."""

    count: int = 0
    #: The earliest first failure among them, and the most recent error.
    failing_since: datetime | None = None
    last_error: str | None = None


@dataclass
class DeliveryStatus:
    counts: dict[str, int]
    oldest_pending_due_at: datetime | None
    last_run: DispatcherRun | None
    retrying: Retrying = field(default_factory=Retrying)

    @property
    def failing(self) -> bool:
        """Whether delivery is failing: some notifications are waiting to be tried again."""
        return self.retrying.count > 0

    @property
    def dispatcher_stale(self) -> bool:
        """Whether the dispatcher has not run for ``DISPATCHER_STALE_AFTER`` (or ever)."""
        return (self.last_run is None
                or self.last_run.started_at < clock.now() - DISPATCHER_STALE_AFTER)


def stale_dispatcher_cause(broker_url: str) -> str:
    """Say what most likely stopped the dispatcher, naming the broker (no password)."""
    return (f"The likely cause: {broker.describe(broker_url)} (MDT_BROKER_URL) is unreachable. "
            "Beat then cannot publish the dispatcher at all, so no run is recorded. "
            "Otherwise celery beat, or every worker, is stopped.")


def delivery_status() -> DeliveryStatus:
    """Count notifications by status; find the oldest pending one and the last dispatcher run."""
    counts = {status.value: 0 for status in Status}
    for status, count in db.session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)):
        counts[Status(status).value] = count
    oldest = _aware(db.session.scalar(select(func.min(Notification.due_at))
                                      .where(Notification.status == Status.PENDING)))
    last_run = db.session.scalars(
        select(DispatcherRun).order_by(DispatcherRun.started_at.desc(), DispatcherRun.id.desc())
        .limit(1)).first()
    return DeliveryStatus(counts, oldest, last_run, _retrying())


def _retrying() -> Retrying:
    """Count the rows waiting for a retry; their first failure and latest error (two queries)."""
    count, since = db.session.execute(
        select(func.count(), func.min(Notification.failing_since)).where(RETRYING)).one()
    if not count:
        return Retrying()
    last_error = db.session.scalar(select(Notification.last_error).where(RETRYING)
                                   .order_by(Notification.updated_at.desc()).limit(1))
    return Retrying(count, _aware(since), last_error)


def _aware(moment: datetime | None) -> datetime | None:
    """Mark UTC a time read through min(), which bypasses the column type (SQLite)."""
    if moment is not None and moment.tzinfo is None:
        return Notification.due_at.type.process_result_value(moment, db.engine.dialect)
    return moment


def retrying_notifications(limit: int = 200) -> list[Notification]:
    """Return the rows waiting for a retry, next attempt first, with their recipients."""
    return list(db.session.scalars(
        select(Notification).options(joinedload(Notification.recipient)).where(RETRYING)
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit)))


def failed_notifications(limit: int = 200) -> list[Notification]:
    """Return the most recent failed notifications with their recipients."""
    return list(db.session.scalars(
        select(Notification).options(joinedload(Notification.recipient))
        .where(Notification.status == Status.FAILED)
        .order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(limit)))


RESENDABLE = {Status.FAILED, Status.CANCELLED, Status.SENT}


def resend(notification_id: int, *, actor: User | None) -> Notification:
    """Queue a failed, cancelled or sent notification again (attempts reset, audited)."""
    notification = get_or_404(Notification, notification_id,
                              f"There is no notification {notification_id}.")
    if notification.status not in RESENDABLE:
        raise ConflictError(f"Notification {notification_id} is {notification.status.value}; "
                            "only failed, cancelled or sent ones can be resent.")
    _requeue(notification, actor)
    db.session.flush()
    return notification


def resend_all_failed(*, actor: User | None) -> int:
    """Queue every failed notification again, each audited as a resend; return how many."""
    failed = list(db.session.scalars(select(Notification).where(
        Notification.status == Status.FAILED).order_by(Notification.id)))
    for notification in failed:
        _requeue(notification, actor)
    db.session.flush()
    return len(failed)


def _requeue(notification: Notification, actor: User | None) -> None:
    previous = notification.status
    notification.status = Status.PENDING
    notification.attempts = 0
    notification.claimed_at = None
    notification.dispatched_at = None
    notification.lease_expires_at = None
    notification.next_attempt_at = notification.due_at
    notification.failing_since = None
    notification.last_error = None
    notification.sent_at = None
    # A notification due in the future keeps its time; an old one goes next run.
    record("notification.resend", f"Notification {notification.id} queued again",
           actor=actor, obj=notification, case_id=notification.case_id,
           data={"status": [previous.value, Status.PENDING.value]})
