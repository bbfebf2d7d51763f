"""When a notification is tried again after a transient failure, and when it is given up.

Retry timing lives in the database (``notifications.next_attempt_at``), never
in a Celery countdown: a row that failed goes back to ``pending`` with the
time of its next attempt, and the dispatcher publishes it once that time has
come, like any due row. The delays double from ``NOTIFY_RETRY_DELAY``
(10 s), capped at ``NOTIFY_RETRY_MAX_DELAY`` (5 min), for as long as the
notification is still relevant (the renderer cancels a meeting reminder once
the meeting has started) and at most ``NOTIFY_RETRY_HORIZON`` (24 h) after
its first failed attempt (``failing_since``); then it is ``failed``.

When a row that was being retried is sent, the SMTP server answers again:
the other rows waiting for a retry are brought forward to the next
dispatcher run instead of each waiting out its own delay.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

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


def bring_forward(now: datetime) -> int:
    """Move every row waiting for a retry to ``now`` (the server answers again); return how many."""
    return rowcount(db.session.execute(
        update(Notification)
        .where(Notification.status == NotificationStatus.PENDING,
               Notification.failing_since.is_not(None), Notification.next_attempt_at > now)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)))


def describe(span: timedelta) -> str:
    """Say a span in hours or minutes ("24 h", "90 min")."""
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes} min"
