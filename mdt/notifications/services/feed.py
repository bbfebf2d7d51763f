"""The private calendar feed: a secret token per person, stored hashed."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.auth.models import User
from mdt.errors import NotFoundError
from mdt.extensions import db
from mdt.meetings.models import Attendance, Meeting
from mdt.notifications.models import (
    CalendarFeedToken,
)

#: How far back the feed lists meetings (calendar programs keep older ones).
FEED_HISTORY = timedelta(days=90)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_token_of(user: User) -> CalendarFeedToken | None:
    """Return ``user``'s calendar feed token row, if they have one."""
    return db.session.scalar(sa.select(CalendarFeedToken).where(
        CalendarFeedToken.user_id == user.id))


def regenerate_feed_token(user: User) -> str:
    """Make a new secret for ``user``'s calendar feed (the old URL stops working); return it."""
    token = secrets.token_urlsafe(32)
    row = feed_token_of(user) or CalendarFeedToken(user_id=user.id)
    row.token_hash = _hash_token(token)
    row.last_used_at = None
    db.session.add(row)
    db.session.flush()
    return token


def revoke_feed_token(user: User) -> bool:
    """Stop ``user``'s calendar feed URL from working; return False if there was none."""
    row = feed_token_of(user)
    if row is None:
        return False
    db.session.delete(row)
    db.session.flush()
    return True


def feed_for_token(token: str) -> tuple[User, list[Meeting]]:
    """Return the person a feed token belongs to and their meetings; unknown token: not found."""
    row = db.session.scalar(sa.select(CalendarFeedToken)
                            .where(CalendarFeedToken.token_hash == _hash_token(token))
                            .options(joinedload(CalendarFeedToken.user)))
    if row is None or not row.user.is_active:
        raise NotFoundError("No such calendar.")
    row.last_used_at = clock.now()
    meetings = list(db.session.scalars(
        sa.select(Meeting).join(Attendance, Attendance.meeting_id == Meeting.id)
        .where(Attendance.user_id == row.user_id,
               Meeting.starts_at >= clock.now() - FEED_HISTORY)
        .options(joinedload(Meeting.series)).order_by(Meeting.starts_at)))
    return row.user, meetings
