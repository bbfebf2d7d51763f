"""Operations on delivery: status counts, failed rows, and resending one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit.services import record
from mdt.auth.models import User
from mdt.db import get_or_404
from mdt.delivery.models import DispatcherRun
from mdt.delivery.services import Status
from mdt.errors import ConflictError
from mdt.extensions import db
from mdt.notifications.models import Notification

#: ``status`` warns when the last dispatcher run is older than this.
DISPATCHER_STALE_AFTER = timedelta(minutes=5)


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


def resend(notification_id: int, *, actor: User | None) -> Notification:
    """Queue a failed, cancelled or sent notification again (attempts reset, audited)."""
    notification = get_or_404(Notification, notification_id,
                              f"There is no notification {notification_id}.")
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
           actor=actor, obj=notification, case_id=notification.case_id,
           data={"status": [previous.value, Status.PENDING.value]})
    db.session.flush()
    return notification
