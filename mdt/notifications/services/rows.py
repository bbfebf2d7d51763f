"""Notification rows: scheduled once per reason (the de-duplication key), moved, cancelled."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mdt import clock, timezones
from mdt.auth.models import Role, User, UserRole
from mdt.extensions import db
from mdt.meetings.models import Meeting
from mdt.notifications.models import (
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)
from mdt.notifications.services.preferences import emails_wanted, is_mandatory

#: Short name for the kinds, used throughout this package.
K = NotificationKind
#: Agenda-closing reminders go this long before the submission cutoff.
AGENDA_CLOSING_NOTICE = timedelta(hours=24)
#: Opinion-pending reminders go this long before the meeting.
OPINION_PENDING_NOTICE = timedelta(hours=24)
#: Action reminders go at this hour of the due day, in the owner's zone.
ACTION_HOUR = time(8, 0)
#: Rows that follow a meeting's start time and move with it.
MEETING_TIMED = (K.MEETING_REMINDER, K.AGENDA_CLOSING, K.OPINION_PENDING)
#: Calendar cancellations are never themselves cancelled by a later hook run.
NOT_A_CANCELLATION = sa.not_(Notification.dedup_key.startswith("calendar_cancel:"))


def find_row(key: str) -> Notification | None:
    """Return the row with this de-duplication key, if any."""
    # Autoflush makes rows added earlier in this transaction visible too.
    return db.session.scalar(sa.select(Notification).where(Notification.dedup_key == key))


def schedule(kind: NotificationKind, recipient_id: int, key: str, due_at: datetime, *,
             meeting_id: int | None = None, case_id: int | None = None,
             payload: dict[str, Any] | None = None) -> Notification | None:
    """Add a pending row for ``key``, or bring an existing one up to date; never a second one.

    A pending row gets the new due time; a cancelled one is revived (the
    reason holds again, e.g. a person invited again); a row already sent,
    sending or failed is left alone and ``None`` is returned.
    """
    wants_email = emails_wanted(recipient_id, kind, (payload or {}).get("role"))
    row = find_row(key)
    if row is None:
        row = _insert_once(kind, recipient_id, key, due_at, meeting_id=meeting_id,
                           case_id=case_id, payload=payload, wants_email=wants_email)
        if row is not None:
            return row
        row = find_row(key)  # another request has just scheduled it: bring theirs up to date
    row = _upsert(row, kind, recipient_id, key, due_at, meeting_id=meeting_id,
                  case_id=case_id, payload=payload, wants_email=wants_email)
    db.session.flush()
    return row


def _insert_once(kind: NotificationKind, recipient_id: int, key: str, due_at: datetime, *,
                 wants_email: bool, meeting_id: int | None, case_id: int | None,
                 payload: dict[str, Any] | None) -> Notification | None:
    """Insert the row for ``key``; None if another transaction holds that key already.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key to
    commit, then does nothing: the unique key is never violated, so the change
    that scheduled the row (say, a case put on an agenda) is never lost to it.
    """
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    statement = insert(Notification).values(
        kind=kind, recipient_id=recipient_id, dedup_key=key, due_at=due_at, attempts=0,
        meeting_id=meeting_id, case_id=case_id, payload=dict(payload or {}),
        send_email=wants_email,
    ).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Notification)
    return db.session.scalars(statement).one_or_none()


def schedule_many(kind: NotificationKind, entries: list[tuple[int, str]], due_at: datetime, *,
                   meeting_id: int) -> None:
    """``schedule`` for many (recipient, key) pairs at once, in a fixed number of queries."""
    keys = [key for _, key in entries]
    ids = [user_id for user_id, _ in entries]
    existing = {row.dedup_key: row for row in db.session.scalars(
        sa.select(Notification).where(Notification.dedup_key.in_(keys)))}
    refused = set(db.session.scalars(sa.select(NotificationPreference.user_id).where(
        NotificationPreference.kind == kind, NotificationPreference.user_id.in_(ids),
        NotificationPreference.send_email.is_(False))))
    for user_id, key in entries:
        _upsert(existing.get(key), kind, user_id, key, due_at, meeting_id=meeting_id,
                wants_email=is_mandatory(kind) or user_id not in refused)
    db.session.flush()


def _upsert(row: Notification | None, kind: NotificationKind, recipient_id: int, key: str,
            due_at: datetime, *, wants_email: bool, meeting_id: int | None = None,
            case_id: int | None = None,
            payload: dict[str, Any] | None = None) -> Notification | None:
    payload = dict(payload or {})
    if row is None:
        row = Notification(kind=kind, recipient_id=recipient_id, dedup_key=key, attempts=0,
                           meeting_id=meeting_id, case_id=case_id, payload=payload)
        db.session.add(row)
    elif row.status == NotificationStatus.CANCELLED:
        row.status, row.attempts, row.last_error, row.read_at = (
            NotificationStatus.PENDING, 0, None, None)
        row.failing_since, row.lease_expires_at, row.next_attempt_at = None, None, due_at
    elif row.status != NotificationStatus.PENDING:
        return None
    row.payload = payload
    row.due_at = due_at
    row.send_email = wants_email
    return row


def cancel_rows(rows: Iterable[Notification]) -> int:
    """Cancel the pending ones of ``rows``; return how many."""
    count = 0
    for row in rows:
        if row.status == NotificationStatus.PENDING:
            row.status = NotificationStatus.CANCELLED
            count += 1
    db.session.flush()
    return count


def invitation_prefix(meeting_id: int, user_id: int, rnd: int) -> str:
    """Return the key prefix of a person's invitations (REQUEST) of one round for a meeting."""
    return f"invitation:m{meeting_id}:u{user_id}:r{rnd}:"


def was_sent_invitation(meeting_id: int, user_id: int, rnd: int) -> bool:
    """Return whether the person was sent an invitation or update of this round (or is being).

    What the person was sent, not what was written for them: an invitation
    still pending, cancelled or failed never reached their calendar, so it
    needs no CANCEL, and the next one is not an update of it.
    """
    return db.session.scalar(sa.select(Notification.id).where(
        Notification.dedup_key.startswith(invitation_prefix(meeting_id, user_id, rnd),
                                          autoescape=True),
        Notification.status.in_([NotificationStatus.SENT, NotificationStatus.SENDING]))
        .limit(1)) is not None


def pending_rows(*criteria: Any) -> list[Notification]:
    """Return the pending rows matching ``criteria``, oldest first."""
    return list(db.session.scalars(sa.select(Notification).where(
        Notification.status == NotificationStatus.PENDING, *criteria).order_by(Notification.id)))


def before(moment: datetime, minutes: int, zone: str) -> datetime:
    """Return ``minutes`` before ``moment``, counting whole days on ``zone``'s wall clock.

    "24 hours before a 14:00 meeting" means 14:00 the day before in the
    meeting's zone, even when a daylight-saving change lies in between.
    """
    days, rest = divmod(minutes, 24 * 60)
    local = timezones.to_local(moment, zone)
    # Aware datetime arithmetic in Python is wall-clock arithmetic.
    shifted = (local - timedelta(days=days)).astimezone(UTC)
    return shifted - timedelta(minutes=rest)


def morning_of(day: date, zone: str) -> datetime:
    """Return ``ACTION_HOUR`` on ``day`` in ``zone``, in UTC."""
    return timezones.local_to_utc(day, ACTION_HOUR, zone)


def zone_for(user: User, fallback: str | None) -> str:
    """Return the zone of a person's timed rows: theirs, else ``fallback``, else the app's."""
    return timezones.first_valid(user.time_zone, fallback)


def _suffix(meeting: Meeting, base: str) -> str:
    """Return the key for a meeting-timed row: the pending one if any, else the plain one, else
    one naming the meeting's sequence (the plain one was sent before a reschedule)."""
    rows = {row.dedup_key: row for row in db.session.scalars(sa.select(Notification).where(
        sa.or_(Notification.dedup_key == base,
               Notification.dedup_key.startswith(f"{base}:s", autoescape=True))))}
    for key, row in rows.items():
        if row.status == NotificationStatus.PENDING:
            return key
    if base not in rows or rows[base].status == NotificationStatus.CANCELLED:
        return base
    return f"{base}:s{meeting.sequence}"


def reminder_due(meeting: Meeting, offset: int) -> datetime:
    """Return when the reminder ``offset`` minutes before the meeting goes."""
    return before(meeting.starts_at, offset, meeting.time_zone)


def agenda_closing_due(meeting: Meeting) -> datetime:
    """Return when the agenda-closing reminder goes (or now, if that is past)."""
    return max(meeting.cutoff_at - AGENDA_CLOSING_NOTICE, clock.now())


def opinion_due(meeting: Meeting) -> datetime:
    """Return when the opinion-pending reminder goes (or now, if that is past)."""
    return max(meeting.starts_at - OPINION_PENDING_NOTICE, clock.now())


def schedule_reminders(meeting: Meeting, user_id: int) -> None:
    """Schedule the series' reminders of ``meeting`` for one attendee (those still ahead)."""
    now = clock.now()
    for offset in meeting.series.reminder_offsets_minutes or []:
        due = reminder_due(meeting, int(offset))
        if due <= now:
            continue  # too late for this one: the invitation or a later reminder covers it
        key = _suffix(meeting, f"meeting_reminder:m{meeting.id}:u{user_id}:{int(offset)}")
        schedule(K.MEETING_REMINDER, user_id, key, due, meeting_id=meeting.id,
                 payload={"offset_minutes": int(offset)})


def is_core_specialist(user: User, meeting: Meeting) -> bool:
    """Return True if ``user`` is an active specialist of a core discipline of the series."""
    return (user.is_active and user.has_role(Role.SPECIALIST)
            and user.discipline.value in (meeting.series.core_disciplines or []))


def schedule_opinion_pending(meeting: Meeting, user: User) -> None:
    """Schedule the opinion-pending reminder of ``meeting`` for a core specialist."""
    if not is_core_specialist(user, meeting):
        return
    key = _suffix(meeting, f"opinion_pending:m{meeting.id}:u{user.id}")
    schedule(K.OPINION_PENDING, user.id, key, opinion_due(meeting), meeting_id=meeting.id)


def agenda_closing_recipient_ids() -> list[int]:
    """Return who is told an agenda is closing: coordinators and referring clinicians.

    Clinicians get a row each; at send time ``build_email`` keeps it only
    for those with an open case not yet on an upcoming agenda, so the list
    is decided when it matters, not weeks ahead when the meeting is made.
    """
    return list(db.session.scalars(
        sa.select(User.id).join(UserRole)
        .where(User.is_active.is_(True), UserRole.role.in_([Role.COORDINATOR, Role.CLINICIAN]))
        .distinct().order_by(User.id)))
