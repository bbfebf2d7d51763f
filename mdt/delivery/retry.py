"""When a notification is tried again after a transient failure, and when it is given up.

Retry timing lives in the database (``notifications.next_attempt_at``), never
in a Celery countdown: a row that failed goes back to ``pending`` with the
time of its next attempt, and the dispatcher publishes it once that time has
come, like any due row. The delays double from ``NOTIFY_RETRY_DELAY``
(10 s), capped at ``NOTIFY_RETRY_MAX_DELAY`` (5 min), for as long as the
notification is still relevant (the renderer cancels a meeting reminder once
the meeting has started) and at most ``NOTIFY_RETRY_HORIZON`` (24 h) after
its first failed attempt (``failing_since``); then it is ``failed``.

To notice promptly that the server answers again, each dispatcher run
while rows wait makes one of them a *probe*: the one waiting longest for
its next attempt is tried now (one extra attempt a minute, whatever the
number of rows waiting). When a row that was being retried is sent, the
server answers again: the other rows waiting for a retry are brought
forward to the next dispatcher run instead of each waiting out its own
delay. So delivery resumes within about two dispatcher runs of the server
coming back, not after up to ``NOTIFY_RETRY_MAX_DELAY``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select, update

from mdt.db import rowcount
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationStatus


def retry_delay(attempts: int) -> float:
    """Return the seconds before attempt ``attempts + 1``: doubling from the first delay, capped."""
    config = current_app.config
    first = float(config["NOTIFY_RETRY_DELAY"])
    return min(first * 2 ** min(max(attempts - 1, 0), 60), float(config["NOTIFY_RETRY_MAX_DELAY"]))


def horizon() -> timedelta:
    """Return how long after its first failure a notification is still retried."""
    return timedelta(seconds=float(current_app.config["NOTIFY_RETRY_HORIZON"]))


@dataclass(frozen=True)
class Plan:
    """What to do after a transient failure: try again at ``at``, or give up (``at`` None)."""

    failing_since: datetime
    at: datetime | None


def plan(attempts: int, failing_since: datetime | None, now: datetime) -> Plan:
    """Return when to try again a row that failed its ``attempts``-th time now, if ever.

    The last attempt is made at the horizon itself, so none is lost to rounding.
    """
    since = failing_since or now
    give_up_at = since + horizon()
    if now >= give_up_at:
        return Plan(since, None)
    return Plan(since, min(now + timedelta(seconds=retry_delay(attempts)), give_up_at))


#: Pending rows that failed an attempt and wait for the next one.
RETRYING = sa.and_(Notification.status == NotificationStatus.PENDING,
                   Notification.failing_since.is_not(None))


def _free(now: datetime) -> sa.ColumnElement[bool]:
    """Rows no task holds: not queued, held or claimed (their lease passed)."""
    return sa.or_(Notification.lease_expires_at.is_(None), Notification.lease_expires_at <= now)


def probe(now: datetime) -> int | None:
    """Make the row waiting longest for a retry due now, unless one is due or on its way.

    Returns its id, or None when no probe is needed (nothing waits, a retry is
    due anyway, or one is already queued or being sent).
    """
    in_flight = db.session.scalar(select(Notification.id).where(
        RETRYING, sa.not_(_free(now))).limit(1))
    if in_flight is not None:
        return None
    first = db.session.execute(
        select(Notification.id, Notification.next_attempt_at).where(
            RETRYING, Notification.due_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id).limit(1)).first()
    if first is None or first.next_attempt_at <= now:
        return None
    db.session.execute(update(Notification).where(Notification.id == first.id)
                       .values(next_attempt_at=now)
                       .execution_options(synchronize_session=False))
    return int(first.id)


def bring_forward(now: datetime) -> int:
    """Move every row waiting for a retry to ``now`` (the server answers again); return how many."""
    return rowcount(db.session.execute(
        update(Notification)
        .where(RETRYING, Notification.next_attempt_at > now)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)))


def describe(span: timedelta) -> str:
    """Say a span in hours or minutes ("24 h", "90 min")."""
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} min"
