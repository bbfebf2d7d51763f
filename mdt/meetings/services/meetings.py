"""One meeting: loading it, listing meetings, rescheduling and cancelling, and when it is fixed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.auth.permissions import can_coordinate
from mdt.cases.models import Case
from mdt.db import flush_or_conflict, get_or_404
from mdt.errors import ConflictError, ImmutableError, InvalidError, NotFoundError
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    Meeting,
    MeetingCorrection,
    MeetingStatus,
)
from mdt.notifications import services as notify


def get_meeting(meeting_id: int) -> Meeting:
    """Return a meeting or raise NotFoundError."""
    return get_or_404(Meeting, meeting_id, "No such meeting.")


def get_meeting_page(meeting_id: int) -> Meeting:
    """Return a meeting with everything its page shows, in a fixed number of queries."""
    meeting = db.session.scalar(
        select(Meeting).where(Meeting.id == meeting_id).options(
            joinedload(Meeting.series), joinedload(Meeting.chair),
            selectinload(Meeting.items).options(
                joinedload(AgendaItem.case).joinedload(Case.patient),
                joinedload(AgendaItem.case).selectinload(Case.references),
                joinedload(AgendaItem.presenter),
                joinedload(AgendaItem.consensus),
                selectinload(AgendaItem.proposals),
            ),
            selectinload(Meeting.attendances).joinedload(Attendance.user),
            selectinload(Meeting.corrections).joinedload(MeetingCorrection.author),
        ))
    if meeting is None:
        raise NotFoundError("No such meeting.")
    return meeting


def is_chair(user: User, meeting: Meeting) -> bool:
    """Return True if ``user`` chairs ``meeting``."""
    return bool(user.is_authenticated and meeting.chair_id == user.id)


def cutoff_at(meeting: Meeting) -> datetime:
    """Return the moment after which only coordinators can add cases (``Meeting.cutoff_at``)."""
    return meeting.cutoff_at


def has_started(meeting: Meeting) -> bool:
    """Return True once the meeting's start time has passed (``Meeting.has_started``)."""
    return meeting.has_started


def upcoming_clause() -> Any:
    """Return the SQL form of ``Meeting.is_upcoming``: scheduled and not started yet."""
    return (Meeting.status == MeetingStatus.SCHEDULED) & (Meeting.starts_at > clock.now())


@dataclass(frozen=True)
class MeetingList:
    upcoming: list[Meeting]
    past: list[Meeting]
    item_counts: dict[int, int] = field(default_factory=dict)


def list_meetings(*, upcoming_limit: int = 20, past_limit: int = 10) -> MeetingList:
    """Return current and upcoming, then recent past meetings with their agenda sizes.

    Three queries whatever the number of meetings. A meeting still in progress
    counts as upcoming (meetings last less than a day).
    """
    now = clock.now()
    horizon = now - timedelta(days=1)
    # The chairs' roles are not shown: skip their per-query selectin load.
    opts = (joinedload(Meeting.series), joinedload(Meeting.chair).lazyload(User.role_rows))
    recent = list(db.session.scalars(
        select(Meeting).where(Meeting.starts_at >= horizon).options(*opts)
        .order_by(Meeting.starts_at).limit(upcoming_limit + past_limit)))
    earlier = list(db.session.scalars(
        select(Meeting).where(Meeting.starts_at < horizon).options(*opts)
        .order_by(Meeting.starts_at.desc()).limit(past_limit)))
    upcoming = [m for m in recent if m.ends_at > now][:upcoming_limit]
    past = ([m for m in reversed(recent) if m.ends_at <= now] + earlier)[:past_limit]
    ids = [m.id for m in upcoming + past]
    counts = dict(db.session.execute(
        select(AgendaItem.meeting_id, func.count()).where(AgendaItem.meeting_id.in_(ids))
        .group_by(AgendaItem.meeting_id)).all()) if ids else {}
    return MeetingList(upcoming, past, counts)


def upcoming_meetings_for(user: User, limit: int = 5) -> list[Meeting]:
    """Return the not-cancelled meetings ``user`` is invited to that start after now."""
    return list(db.session.scalars(
        select(Meeting).join(Attendance, Attendance.meeting_id == Meeting.id)
        .where(Attendance.user_id == user.id, upcoming_clause())
        .options(joinedload(Meeting.series)).order_by(Meeting.starts_at).limit(limit)))


def meetings_open_for_case(user: User, case: Case) -> list[Meeting]:
    """Return upcoming meetings ``user`` may add ``case`` to now (not already on them)."""
    on_agenda = select(AgendaItem.meeting_id).where(AgendaItem.case_id == case.id)
    meetings = db.session.scalars(
        select(Meeting).where(upcoming_clause(), Meeting.id.not_in(on_agenda))
        .options(joinedload(Meeting.series)).order_by(Meeting.starts_at).limit(20))
    if can_coordinate(user):
        return list(meetings)
    return [m for m in meetings if clock.now() < cutoff_at(m)]


def lock_meeting(meeting: Meeting, *, with_items: bool = False) -> Meeting:
    """Hold the meeting's row until commit and re-read it (and its agenda, ``with_items``).

    Changes to one meeting (its agenda, its record) and signing at it then
    happen one request at a time: on PostgreSQL a concurrent request waits here
    and then reads what the first one committed. ``FOR NO KEY UPDATE`` still
    lets other transactions insert rows that merely refer to the meeting.
    SQLite has no row locks but admits one writer at a time; ``next_position``
    is computed inside the INSERT so that the lock is not needed there.
    """
    query = (select(Meeting).where(Meeting.id == meeting.id).with_for_update(key_share=True)
             .execution_options(populate_existing=True))
    if with_items:
        query = query.options(selectinload(Meeting.items))
    db.session.scalars(query).one()
    return meeting


#: Why the record of a meeting with signed decisions is refused an ordinary edit.
SIGNED_AT_MEETING = ("Decisions were signed at this meeting, so its date, time, duration, "
                     "place, chair and status are part of their record and cannot be edited, "
                     "nor the meeting cancelled. If the record is wrong, record a correction "
                     "with the reason: it is kept and shown with the decisions.")


def has_signed_items(meeting: Meeting) -> bool:
    """Return True once a consensus is signed for an item of ``meeting``.

    The one definition of "the meeting's record is fixed": editing and
    cancelling refuse it, corrections require it, and the pages show it.
    """
    from mdt.decisions.models import Consensus

    return bool(db.session.scalar(select(exists().where(
        Consensus.agenda_item_id == AgendaItem.id, AgendaItem.meeting_id == meeting.id))))


def check_meeting_editable(meeting: Meeting) -> None:
    """Raise ImmutableError if decisions were signed at ``meeting`` (correct it instead)."""
    if has_signed_items(meeting):
        raise ImmutableError(SIGNED_AT_MEETING)


def check_duration(duration_minutes: int) -> None:
    """Raise InvalidError on the duration field unless it is positive."""
    if duration_minutes <= 0:
        raise InvalidError("The duration must be positive.",
                           fields={"duration_minutes": "At least one minute."})


def same_start(meeting: Meeting, starts_at: datetime) -> datetime:
    """Return the meeting's own start if ``starts_at`` is the same minute (as forms give it)."""
    if starts_at.replace(second=0, microsecond=0) == meeting.starts_at.replace(
            second=0, microsecond=0):
        return meeting.starts_at
    return starts_at


def check_not_into_the_past(meeting: Meeting, starts_at: datetime) -> None:
    """Refuse moving ``meeting`` to a start time that has passed (its own is left alone).

    Saving a meeting in progress with its start unchanged (only the place,
    say) is not a reschedule.
    """
    if starts_at != meeting.starts_at and starts_at <= clock.now():
        raise InvalidError("A meeting cannot be rescheduled into the past.",
                           fields={"day": "Choose a date and time that are still ahead."})


def require_scheduled(meeting: Meeting) -> None:
    """Raise InvalidError if ``meeting`` is cancelled: nothing on it can change."""
    if meeting.is_cancelled:
        raise InvalidError("This meeting is cancelled; nothing on it can change.")


def check_version(obj: Any, expected: int | None, what: str) -> None:
    """Refuse an edit made from a form opened at another ``version`` of ``obj``."""
    if expected is not None and int(expected) != obj.version:
        raise ConflictError(f"Someone else changed this {what} since you opened it. "
                            "Nothing was saved: reload the page to see their changes, "
                            "then make yours again.")


def check_active_user(user_id: int | None, field: str, message: str) -> None:
    """Raise InvalidError on ``field`` unless ``user_id`` is None or an active user."""
    if user_id is None:
        return
    person = db.session.get(User, user_id)
    if person is None or not person.is_active:
        raise InvalidError(message, fields={field: "Choose an active person."})


def update_meeting(meeting: Meeting, *, actor: User | None, expected_version: int | None,
                   starts_at: datetime, duration_minutes: int, location: str | None,
                   video_url: str | None, chair_id: int | None) -> dict[str, list[Any]]:
    """Reschedule, re-chair or move one meeting; refuse an edit based on a stale version.

    Refused once decisions were signed at the meeting (``correct_meeting`` then),
    and a new start time must be ahead.
    """
    lock_meeting(meeting)
    check_version(meeting, expected_version, "meeting")
    require_scheduled(meeting)
    check_meeting_editable(meeting)
    starts_at = same_start(meeting, starts_at)
    check_duration(duration_minutes)
    check_not_into_the_past(meeting, starts_at)
    check_active_user(chair_id, "chair_id", "The chair must be an active user.")
    diff = audit.changes(meeting, dict(
        starts_at=starts_at, duration_minutes=duration_minutes,
        location=(location or "").strip() or None, video_url=(video_url or "").strip() or None,
        chair_id=chair_id))
    if not diff:
        return diff
    meeting.sequence += 1
    flush_or_conflict()
    audit.record("meeting.changed", f"Meeting {meeting.id} changed", actor=actor, obj=meeting,
                 data=diff)
    if diff.keys() & {"starts_at", "duration_minutes", "location", "video_url"}:
        notify.on_meeting_rescheduled(meeting)  # what calendars show: time, place, link
    return diff


def cancel_meeting(meeting: Meeting, *, actor: User | None, reason: str,
                   expected_version: int | None = None) -> None:
    """Cancel a meeting with a reason; its pending items can then be carried over.

    Refused once decisions were signed at it: a meeting that decided cannot
    be listed as cancelled beside its agreed recommendations.
    """
    lock_meeting(meeting)
    check_version(meeting, expected_version, "meeting")
    require_scheduled(meeting)
    check_meeting_editable(meeting)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidError("Say why the meeting is cancelled.", fields={"reason": "Required."})
    meeting.status = MeetingStatus.CANCELLED
    meeting.cancel_reason = reason
    meeting.sequence += 1
    flush_or_conflict()
    audit.record("meeting.cancelled", f"Meeting {meeting.id} cancelled", actor=actor,
                 obj=meeting, data={"reason": reason})
    notify.on_meeting_cancelled(meeting)
