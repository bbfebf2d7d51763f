"""The in-app notification centre: what a person sees, unread counts, marking read."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.auth.models import User
from mdt.db import rowcount
from mdt.errors import NotFoundError
from mdt.extensions import db
from mdt.meetings.models import Meeting
from mdt.notifications.models import (
    Notification,
    NotificationStatus,
)


def _visible(user: User) -> tuple[Any, ...]:
    return (Notification.recipient_id == user.id, Notification.due_at <= clock.now(),
            Notification.status != NotificationStatus.CANCELLED)


def unread_count(user: User) -> int:
    """Return how many due, not cancelled notifications ``user`` has not read (one query)."""
    return db.session.scalar(sa.select(sa.func.count(Notification.id))
                             .where(*_visible(user), Notification.read_at.is_(None))) or 0


def recent_for(user: User, limit: int = 50) -> list[Notification]:
    """Return ``user``'s latest due, not cancelled notifications, newest first."""
    return list(db.session.scalars(
        sa.select(Notification).where(*_visible(user))
        .options(joinedload(Notification.meeting).joinedload(Meeting.series))
        .order_by(Notification.due_at.desc(), Notification.id.desc()).limit(limit)))


def mark_read(user: User, notification_id: int) -> Notification:
    """Mark one of ``user``'s notifications read; another person's is not found."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.recipient_id != user.id:
        raise NotFoundError("No such notification.")
    if row.read_at is None:
        row.read_at = clock.now()
        db.session.flush()
    return row


def mark_all_read(user: User) -> int:
    """Mark every visible unread notification of ``user`` read; return how many."""
    result = db.session.execute(
        sa.update(Notification).where(*_visible(user), Notification.read_at.is_(None))
        .values(read_at=clock.now()).execution_options(synchronize_session=False))
    return rowcount(result)
