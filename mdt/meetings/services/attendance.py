"""Attendance: who is invited, how they answered, who was present."""
from __future__ import annotations

from sqlalchemy import func, select

from mdt.audit import services as audit
from mdt.auth.models import Discipline, Role, User, UserRole
from mdt.auth.permissions import can_coordinate
from mdt.db import get_or_404
from mdt.errors import ForbiddenError, InvalidError
from mdt.extensions import db
from mdt.meetings.models import Attendance, Meeting, Presence, Response
from mdt.meetings.services.meetings import is_chair, require_scheduled
from mdt.notifications import services as notify
from mdt.timezones import local_today, to_local


def get_attendance(attendance_id: int) -> Attendance:
    """Return an attendance row or raise NotFoundError."""
    return get_or_404(Attendance, attendance_id, "No such attendee.")


def invite(meeting: Meeting, user: User, *, actor: User | None) -> Attendance | None:
    """Invite a person to a meeting; return the new row, or None if already invited."""
    require_scheduled(meeting)
    if not user.is_active:
        raise InvalidError("Only an active person can be invited.",
                           fields={"user_id": "This person is deactivated."})
    if db.session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id,
                                                      Attendance.user_id == user.id)):
        return None
    attendance = Attendance(meeting=meeting, user=user)
    db.session.add(attendance)
    db.session.flush()
    audit.record("attendance.invited", f"User {user.id} invited to meeting {meeting.id}",
                 actor=actor, obj=attendance,
                 data={"meeting_id": meeting.id, "user_id": user.id})
    notify.on_attendee_added(attendance)
    return attendance


def core_team(meeting: Meeting) -> list[User]:
    """Return the chair and the active specialists of the series' core disciplines."""
    core = [Discipline(d) for d in meeting.series.core_disciplines]
    people = list(db.session.scalars(
        select(User).join(UserRole)
        .where(UserRole.role == Role.SPECIALIST, User.is_active.is_(True),
               User.discipline.in_(core))
        .order_by(func.lower(User.name))))
    if meeting.chair is not None and meeting.chair.is_active and meeting.chair not in people:
        people.insert(0, meeting.chair)
    return people


def invite_core_team(meeting: Meeting, *, actor: User | None) -> list[Attendance]:
    """Invite the chair and the core specialists; return the new rows (idempotent)."""
    added = [invite(meeting, person, actor=actor) for person in core_team(meeting)]
    return [a for a in added if a is not None]


def remove_attendee(attendance: Attendance, *, actor: User | None) -> None:
    """Uninvite a person (the row goes; the audit entry stays)."""
    meeting = attendance.meeting
    notify.on_attendee_removed(attendance)
    audit.record("attendance.removed",
                 f"User {attendance.user_id} removed from meeting {meeting.id}", actor=actor,
                 obj=attendance,
                 data={"meeting_id": meeting.id, "user_id": attendance.user_id,
                       "response": attendance.response, "presence": attendance.presence})
    meeting.attendances.remove(attendance)
    db.session.delete(attendance)
    db.session.flush()


def respond(attendance: Attendance, user: User, response: Response | str) -> None:
    """Record an invitee's own answer: accepted, declined or apologies."""
    response = Response(response)
    if attendance.user_id != user.id:
        raise ForbiddenError("Only the invited person can answer their invitation.")
    if response == Response.INVITED:
        raise InvalidError("Answer accepted, declined or apologies.")
    require_scheduled(attendance.meeting)
    diff = audit.changes(attendance, {"response": response})
    if diff:
        db.session.flush()
        audit.record("attendance.responded", f"User {user.id} answered {response.value}",
                     actor=user, obj=attendance, data=diff)


def can_record_presence(user: User, meeting: Meeting) -> bool:
    """Coordinators, admins and the meeting's chair record who is present."""
    return can_coordinate(user) or is_chair(user, meeting)


def presence_open(meeting: Meeting) -> bool:
    """Return True from the meeting's local day on (presence is recorded on the day)."""
    local_day = to_local(meeting.starts_at, meeting.time_zone).date()
    return local_today(meeting.time_zone) >= local_day


def record_presence(attendance: Attendance, user: User, presence: Presence | str) -> None:
    """Mark an attendee present or absent, from the day of the meeting."""
    presence = Presence(presence)
    meeting = attendance.meeting
    if not can_record_presence(user, meeting):
        raise ForbiddenError("Only a coordinator or the meeting's chair records who is present.")
    require_scheduled(meeting)
    if not presence_open(meeting):
        raise InvalidError("Presence is recorded on the day of the meeting.")
    diff = audit.changes(attendance, {"presence": presence})
    if diff:
        db.session.flush()
        audit.record("attendance.presence", f"User {attendance.user_id} {presence.value}",
                     actor=user, obj=attendance, data=diff)
