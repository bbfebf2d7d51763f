"""Schedule, move and cancel notification rows when clinical events happen.

Other features call the ``on_*`` hooks from their services, inside the same
transaction as the change that causes them (a notification is a row before
it is a message). They only add or update rows and flush; nothing here
talks to the broker, so a web request never waits on Redis, and nothing
commits. The worker's dispatcher (``mdt.delivery``) sends due
rows, calling ``render.build_email`` which drops rows no longer relevant.

Each row has a unique ``dedup_key`` naming its reason, so running a hook
twice creates nothing twice (checked in the session first; the unique
constraint is the backstop). Keys:

- ``invitation:m{meeting}:u{user}:r{round}:s{sequence}`` (REQUEST) and
  ``calendar_cancel:m{meeting}:u{user}:r{round}`` (CANCEL), where the round
  counts the cancellations already sent to the person for the meeting, so
  that someone removed and invited again is invited again (attendance ids
  can be reused by SQLite once the row is deleted),
- ``meeting_reminder:m{meeting}:u{user}:{offset}`` (``:s{sequence}`` added
  when a reschedule needs a new one after the first was sent),
- ``agenda_closing:m{meeting}:u{user}``, ``opinion_pending:m{meeting}:u{user}``
  (same suffix rule),
- ``case_deferred:i{item}``, ``case_deferred:i{item}:to{new_item}``,
- ``consensus_signed:c{consensus}:u{user}``, ``amendment:a{amendment}:u{user}``,
- ``action_due:a{action}`` and ``action_overdue:a{action}``.

Timing choices (documented in docs and the preferences page):

- meeting reminders at the series' ``reminder_offsets_minutes`` (default
  24 h and 1 h); whole days are counted in the meeting's local calendar, so
  a 24 h reminder across a daylight-saving change still goes at the
  meeting's local hour the day before;
- agenda closing ``AGENDA_CLOSING_NOTICE`` (24 h) before the submission cutoff;
- opinion pending ``OPINION_PENDING_NOTICE`` (24 h) before the meeting, one
  message per specialist per meeting listing the items still waiting for them;
- action due at ``ACTION_HOUR`` (08:00) on the due date in the owner's zone,
  overdue at the same hour the day after.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.auth.models import Role, User, UserRole
from mdt.errors import NotFoundError
from mdt.extensions import db
from mdt.meetings.models import Attendance, Meeting
from mdt.notifications.models import (
    CalendarFeedToken,
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)

if TYPE_CHECKING:
    from mdt.decisions.models import Amendment, Consensus
    from mdt.meetings.models import AgendaItem

K = NotificationKind
AGENDA_CLOSING_NOTICE = timedelta(hours=24)
OPINION_PENDING_NOTICE = timedelta(hours=24)
ACTION_HOUR = time(8, 0)
#: Kinds a person may not switch off by e-mail (the service depends on them).
ALWAYS_EMAILED = frozenset({K.INVITATION})
#: ... and kinds that are mandatory only in one role (payload ``role``).
MANDATORY_FOR_ROLE = {K.CONSENSUS_SIGNED: "responsible"}
#: Rows that follow a meeting's start time and move with it.
MEETING_TIMED = (K.MEETING_REMINDER, K.AGENDA_CLOSING, K.OPINION_PENDING)
#: Calendar cancellations are never themselves cancelled by a later hook run.
_NOT_A_CANCELLATION = sa.not_(Notification.dedup_key.startswith("calendar_cancel:"))


# --- preferences -------------------------------------------------------------------------------

def is_mandatory(kind: NotificationKind, role: str | None = None) -> bool:
    """Return True if ``kind`` (for a recipient in ``role``) is always e-mailed."""
    return kind in ALWAYS_EMAILED or (role is not None and MANDATORY_FOR_ROLE.get(kind) == role)


def email_preferences(user: User) -> dict[NotificationKind, bool]:
    """Return, for every kind, whether ``user`` receives it by e-mail."""
    stored = dict(db.session.execute(
        sa.select(NotificationPreference.kind, NotificationPreference.send_email)
        .where(NotificationPreference.user_id == user.id)).all())
    return {kind: True if kind in ALWAYS_EMAILED else stored.get(kind, True) for kind in K}


def set_email_preferences(user: User, chosen: Iterable[NotificationKind | str]) -> None:
    """Store which kinds ``user`` wants by e-mail; mandatory kinds stay on whatever is chosen."""
    wanted = {K(kind) for kind in chosen} | ALWAYS_EMAILED
    rows = {row.kind: row for row in db.session.scalars(
        sa.select(NotificationPreference).where(NotificationPreference.user_id == user.id))}
    for kind in K:
        row = rows.get(kind) or NotificationPreference(user_id=user.id, kind=kind)
        row.send_email = kind in wanted
        db.session.add(row)
    db.session.flush()


def _wants_email(user_id: int, kind: NotificationKind, role: str | None) -> bool:
    if is_mandatory(kind, role):
        return True
    choice = db.session.scalar(sa.select(NotificationPreference.send_email).where(
        NotificationPreference.user_id == user_id, NotificationPreference.kind == kind))
    return True if choice is None else choice


# --- rows ----------------------------------------------------------------------------------------

def _find(key: str) -> Notification | None:
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
    row = _upsert(_find(key), kind, recipient_id, key, due_at, meeting_id=meeting_id,
                  case_id=case_id, payload=payload,
                  wants_email=_wants_email(recipient_id, kind, (payload or {}).get("role")))
    db.session.flush()
    return row


def _schedule_many(kind: NotificationKind, entries: list[tuple[int, str]], due_at: datetime, *,
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
    elif row.status != NotificationStatus.PENDING:
        return None
    row.payload = payload
    row.due_at = due_at
    row.send_email = wants_email
    return row


def _cancel(rows: Iterable[Notification]) -> int:
    count = 0
    for row in rows:
        if row.status == NotificationStatus.PENDING:
            row.status = NotificationStatus.CANCELLED
            count += 1
    db.session.flush()
    return count


def _pending(*criteria: Any) -> list[Notification]:
    return list(db.session.scalars(sa.select(Notification).where(
        Notification.status == NotificationStatus.PENDING, *criteria).order_by(Notification.id)))


# --- time ----------------------------------------------------------------------------------------

def before(moment: datetime, minutes: int, zone: str) -> datetime:
    """Return ``minutes`` before ``moment``, counting whole days on ``zone``'s wall clock.

    "24 hours before a 14:00 meeting" means 14:00 the day before in the
    meeting's zone, even when a daylight-saving change lies in between.
    """
    days, rest = divmod(minutes, 24 * 60)
    local = moment.astimezone(ZoneInfo(zone))
    # Aware datetime arithmetic in Python is wall-clock arithmetic.
    shifted = (local - timedelta(days=days)).astimezone(UTC)
    return shifted - timedelta(minutes=rest)


def morning_of(day: date, zone: str) -> datetime:
    """Return ``ACTION_HOUR`` on ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, ACTION_HOUR, ZoneInfo(zone)).astimezone(UTC)


def _zone_for(user: User, fallback: str | None) -> str:
    return user.time_zone or fallback or current_app.config["DEFAULT_TIME_ZONE"]


def _is_upcoming(meeting: Meeting) -> bool:
    return not meeting.is_cancelled and meeting.starts_at > clock.now()


def _suffix(meeting: Meeting, base: str) -> str:
    """The key for a meeting-timed row: the pending one if any, else the plain one, else
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


# --- meeting-timed rows --------------------------------------------------------------------------

def _reminder_due(meeting: Meeting, offset: int) -> datetime:
    return before(meeting.starts_at, offset, meeting.time_zone)


def _agenda_closing_due(meeting: Meeting) -> datetime:
    cutoff = meeting.starts_at - timedelta(hours=meeting.series.cutoff_hours)
    return max(cutoff - AGENDA_CLOSING_NOTICE, clock.now())


def _opinion_due(meeting: Meeting) -> datetime:
    return max(meeting.starts_at - OPINION_PENDING_NOTICE, clock.now())


def _schedule_reminders(meeting: Meeting, user_id: int) -> None:
    now = clock.now()
    for offset in meeting.series.reminder_offsets_minutes or []:
        due = _reminder_due(meeting, int(offset))
        if due <= now:
            continue  # too late for this one: the invitation or a later reminder covers it
        key = _suffix(meeting, f"meeting_reminder:m{meeting.id}:u{user_id}:{int(offset)}")
        schedule(K.MEETING_REMINDER, user_id, key, due, meeting_id=meeting.id,
                 payload={"offset_minutes": int(offset)})


def _is_core_specialist(user: User, meeting: Meeting) -> bool:
    return (user.is_active and user.has_role(Role.SPECIALIST)
            and user.discipline.value in (meeting.series.core_disciplines or []))


def _schedule_opinion_pending(meeting: Meeting, user: User) -> None:
    if not _is_core_specialist(user, meeting):
        return
    key = _suffix(meeting, f"opinion_pending:m{meeting.id}:u{user.id}")
    schedule(K.OPINION_PENDING, user.id, key, _opinion_due(meeting), meeting_id=meeting.id)


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


# --- hooks: meetings -----------------------------------------------------------------------------

def on_meeting_created(meeting: Meeting) -> None:
    """Schedule the meeting-wide notifications (agenda closing) for a new meeting."""
    cutoff = meeting.starts_at - timedelta(hours=meeting.series.cutoff_hours)
    if not _is_upcoming(meeting) or cutoff <= clock.now():
        return
    entries = [(user_id, f"agenda_closing:m{meeting.id}:u{user_id}")
               for user_id in agenda_closing_recipient_ids()]
    _schedule_many(K.AGENDA_CLOSING, entries, _agenda_closing_due(meeting), meeting_id=meeting.id)


def on_meeting_rescheduled(meeting: Meeting) -> None:
    """Move pending reminders to the new time and send calendar updates."""
    now = clock.now()
    for row in _pending(Notification.meeting_id == meeting.id, Notification.kind.in_(MEETING_TIMED)):
        due = _new_due(meeting, row)
        if due is None or (due <= now and row.kind == K.MEETING_REMINDER):
            row.status = NotificationStatus.CANCELLED
        else:
            row.due_at = max(due, now)
    db.session.flush()
    if not _is_upcoming(meeting):
        return
    has_items = bool(meeting.items)
    for attendance in meeting.attendances:
        _schedule_reminders(meeting, attendance.user_id)
        _invite(attendance)
        if has_items:
            _schedule_opinion_pending(meeting, attendance.user)


def _new_due(meeting: Meeting, row: Notification) -> datetime | None:
    if row.kind == K.MEETING_REMINDER:
        return _reminder_due(meeting, int(row.payload.get("offset_minutes", 0)))
    if row.kind == K.AGENDA_CLOSING:
        cutoff = meeting.starts_at - timedelta(hours=meeting.series.cutoff_hours)
        return _agenda_closing_due(meeting) if cutoff > clock.now() else None
    return _opinion_due(meeting)


def on_meeting_cancelled(meeting: Meeting) -> None:
    """Cancel pending notifications of the meeting and send calendar cancellations."""
    _cancel(_pending(Notification.meeting_id == meeting.id, _NOT_A_CANCELLATION))
    if meeting.starts_at <= clock.now():
        return
    for attendance in meeting.attendances:
        _send_cancel(attendance, reason="cancelled")


def on_attendee_added(attendance: Attendance) -> None:
    """Invite the person (with .ics) and schedule their reminders."""
    meeting = attendance.meeting
    if attendance.id is None:
        db.session.flush()
    if not _is_upcoming(meeting):
        return
    # Invited again after a removal: a CANCEL not yet sent must not follow the new invitation.
    _cancel(_pending(Notification.dedup_key.startswith(
        f"calendar_cancel:m{meeting.id}:u{attendance.user_id}:", autoescape=True)))
    _invite(attendance)
    _schedule_reminders(meeting, attendance.user_id)
    if meeting.items:
        _schedule_opinion_pending(meeting, attendance.user)


def on_attendee_removed(attendance: Attendance) -> None:
    """Cancel the person's pending notifications and send a calendar cancellation."""
    meeting = attendance.meeting
    _cancel(_pending(Notification.meeting_id == meeting.id,
                     Notification.recipient_id == attendance.user_id,
                     Notification.kind != K.AGENDA_CLOSING, _NOT_A_CANCELLATION))
    if meeting.starts_at > clock.now():
        _send_cancel(attendance, reason="removed")


def _round(meeting_id: int, user_id: int) -> int:
    """How many times the person was sent a cancellation for the meeting (removed, re-invited)."""
    return db.session.scalar(sa.select(sa.func.count(Notification.id)).where(
        Notification.dedup_key.startswith(f"calendar_cancel:m{meeting_id}:u{user_id}:",
                                          autoescape=True))) or 0


def _invite(attendance: Attendance) -> None:
    meeting = attendance.meeting
    rnd = _round(meeting.id, attendance.user_id)
    prefix = f"invitation:m{meeting.id}:u{attendance.user_id}:r{rnd}:"
    pending = _pending(Notification.dedup_key.startswith(prefix, autoescape=True))
    if pending:
        # Not sent yet: it will describe the meeting as it is when it goes.
        return
    schedule(K.INVITATION, attendance.user_id, f"{prefix}s{meeting.sequence}", clock.now(),
             meeting_id=meeting.id, payload={"method": "REQUEST", "sequence": meeting.sequence})


def _send_cancel(attendance: Attendance, *, reason: str) -> None:
    """Send a CANCEL for the current round of invitations, once; none if never invited."""
    meeting = attendance.meeting
    rnd = _round(meeting.id, attendance.user_id)
    invited = db.session.scalar(sa.select(Notification.id).where(
        Notification.dedup_key.startswith(f"invitation:m{meeting.id}:u{attendance.user_id}:r{rnd}:",
                                          autoescape=True)).limit(1))
    if invited is None:
        return
    key = f"calendar_cancel:m{meeting.id}:u{attendance.user_id}:r{rnd}"
    schedule(K.INVITATION, attendance.user_id, key, clock.now(), meeting_id=meeting.id,
             payload={"method": "CANCEL", "reason": reason, "sequence": meeting.sequence})


# --- hooks: agenda items -------------------------------------------------------------------------

def on_item_added(item: AgendaItem) -> None:
    """Schedule opinion-pending reminders for the specialists invited to the item's meeting."""
    meeting = item.meeting
    if not _is_upcoming(meeting):
        return
    for attendance in meeting.attendances:
        _schedule_opinion_pending(meeting, attendance.user)


def on_item_deferred(item: AgendaItem, new_item: AgendaItem | None = None) -> None:
    """Tell the referrer their case was deferred or carried over (reason, new date)."""
    referrer_id = item.case.referring_clinician_id
    key = f"case_deferred:i{item.id}"
    payload: dict[str, Any] = {"item_id": item.id}
    if new_item is not None:
        payload["new_item_id"] = new_item.id
        first = _find(key)
        if first is not None and first.status != NotificationStatus.PENDING:
            key = f"{key}:to{new_item.id}"  # the first message went without the new date
    schedule(K.CASE_DEFERRED, referrer_id, key, clock.now(), meeting_id=item.meeting_id,
             case_id=item.case_id, payload=payload)


def on_item_withdrawn(item: AgendaItem) -> None:
    """Cancel pending notifications about a withdrawn case."""
    rows = _pending(Notification.case_id == item.case_id)
    _cancel(row for row in rows if row.meeting_id == item.meeting_id
            or row.payload.get("new_item_id") == item.id)


# --- hooks: decisions ----------------------------------------------------------------------------

def _clinicians(consensus: Consensus) -> list[tuple[int, str]]:
    """The referring and responsible clinicians, once each; responsible wins if the same."""
    case = consensus.agenda_item.case
    people: dict[int, str] = {}
    if consensus.responsible_clinician_id is not None:
        people[consensus.responsible_clinician_id] = "responsible"
    people.setdefault(case.referring_clinician_id, "referrer")
    return list(people.items())


def on_consensus_signed(consensus: Consensus) -> None:
    """Tell the referring and responsible clinicians; schedule action-due reminders."""
    item = consensus.agenda_item
    for user_id, role in _clinicians(consensus):
        schedule(K.CONSENSUS_SIGNED, user_id, f"consensus_signed:c{consensus.id}:u{user_id}",
                 clock.now(), case_id=item.case_id,
                 payload={"consensus_id": consensus.id, "role": role})
    for action in consensus.actions:
        _schedule_action(consensus, action)


def _schedule_action(consensus: Consensus, action: Any) -> None:
    if action.owner_id is None or action.due_on is None:
        return
    owner = action.owner or db.session.get(User, action.owner_id)
    zone = _zone_for(owner, consensus.agenda_item.meeting.time_zone)
    now = clock.now()
    common = dict(case_id=consensus.agenda_item.case_id)
    due = morning_of(action.due_on, zone)
    overdue = morning_of(action.due_on + timedelta(days=1), zone)
    if overdue > now:
        schedule(K.ACTION_DUE, owner.id, f"action_due:a{action.id}", max(due, now),
                 payload={"action_id": action.id, "overdue": False}, **common)
        schedule(K.ACTION_DUE, owner.id, f"action_overdue:a{action.id}", overdue,
                 payload={"action_id": action.id, "overdue": True}, **common)


def on_amendment_added(amendment: Amendment) -> None:
    """Tell the referring and responsible clinicians that the consensus was amended."""
    consensus = amendment.consensus
    for user_id, role in _clinicians(consensus):
        schedule(K.AMENDMENT, user_id, f"amendment:a{amendment.id}:u{user_id}", clock.now(),
                 case_id=consensus.agenda_item.case_id,
                 payload={"consensus_id": consensus.id, "amendment_id": amendment.id,
                          "role": role})


# --- in-app centre -------------------------------------------------------------------------------

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
    return result.rowcount or 0


# --- private calendar feed -----------------------------------------------------------------------

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
