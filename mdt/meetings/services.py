"""Domain operations on meeting series, meetings, agendas and attendance.

Services change objects and flush; the caller commits. Every agenda change
writes an audit entry with the case's id in the same transaction.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, lazyload, selectinload
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import Discipline, Role, User, UserRole
from mdt.cases import services as cases
from mdt.cases.models import Case, CaseStatus
from mdt.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    Presence,
    Response,
    Triage,
)
from mdt.notifications import services as notify

NOT_REACHED = "Not reached"


# --- time -----------------------------------------------------------------

def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise InvalidError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidError(f"Unknown time zone {name!r}.",
                           fields={"time_zone": "Unknown time zone; use a name such as Asia/Shanghai."}
                           ) from exc


def local_to_utc(day: date, at: time, zone_name: str) -> datetime:
    """Return the UTC instant of the wall-clock time ``at`` on ``day`` in ``zone_name``."""
    return datetime.combine(day, at, tzinfo=zone(zone_name)).astimezone(UTC)


def local_now(zone_name: str) -> datetime:
    return clock.now().astimezone(zone(zone_name))


def cutoff_at(meeting: Meeting) -> datetime:
    """Return the moment after which only coordinators can add cases (late additions)."""
    return meeting.starts_at - timedelta(hours=meeting.series.cutoff_hours)


def has_started(meeting: Meeting) -> bool:
    """Return True once the meeting's start time has passed."""
    return clock.now() >= meeting.starts_at


def _flush() -> None:
    """Flush, turning a lost optimistic-lock race into a ConflictError."""
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise ConflictError("Someone else changed this record at the same moment. "
                            "Reload the page and try again.") from exc


def _check_version(obj: Any, expected: int | None, what: str) -> None:
    if expected is not None and int(expected) != obj.version:
        raise ConflictError(f"Someone else changed this {what} since you opened it. "
                            "Nothing was saved: reload the page to see their changes, "
                            "then make yours again.")


def _is_coordinator(user: User) -> bool:
    return user.has_role(Role.COORDINATOR, Role.ADMIN)


# --- series -----------------------------------------------------------------

SERIES_FIELDS = ("name", "weekday", "start_time", "time_zone", "duration_minutes", "location",
                 "video_url", "default_chair_id", "core_disciplines", "cutoff_hours",
                 "reminder_offsets_minutes")


def list_series() -> list[MeetingSeries]:
    """Return every series by name, with its default chair."""
    return list(db.session.scalars(
        select(MeetingSeries).options(joinedload(MeetingSeries.default_chair))
        .order_by(func.lower(MeetingSeries.name), MeetingSeries.id)))


def get_series(series_id: int) -> MeetingSeries:
    """Return a series or raise NotFoundError."""
    series = db.session.get(MeetingSeries, series_id)
    if series is None:
        raise NotFoundError("No such meeting series.")
    return series


def _clean_series_values(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(SERIES_FIELDS)
    if unknown:
        raise TypeError(f"unknown series fields: {sorted(unknown)}")
    out = dict(values)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"]:
            raise InvalidError("A series needs a name.", fields={"name": "Required."})
    if "time_zone" in out:
        zone(out["time_zone"])
    if "weekday" in out and not 0 <= int(out["weekday"]) <= 6:
        raise InvalidError("Weekday must be Monday to Sunday.", fields={"weekday": "Choose a day."})
    if "core_disciplines" in out:
        out["core_disciplines"] = [Discipline(d).value for d in out["core_disciplines"]]
    if "reminder_offsets_minutes" in out:
        offsets = sorted({int(m) for m in out["reminder_offsets_minutes"]}, reverse=True)
        if any(m <= 0 for m in offsets):
            raise InvalidError("Reminder offsets must be positive minutes.",
                               fields={"reminder_offsets_minutes": "Positive minutes only."})
        out["reminder_offsets_minutes"] = offsets
    if out.get("default_chair_id") is not None:
        chair = db.session.get(User, out["default_chair_id"])
        if chair is None or not chair.is_active:
            raise InvalidError("The chair must be an active user.",
                               fields={"default_chair_id": "Choose an active person."})
    for key in ("location", "video_url"):
        if key in out:
            out[key] = (out[key] or "").strip() or None
    return out


def create_series(**values: Any) -> MeetingSeries:
    """Create a meeting series and generate its upcoming meetings."""
    values = _clean_series_values(values)
    series = MeetingSeries(**values)
    db.session.add(series)
    db.session.flush()
    audit.record("series.created", f"Meeting series {series.id} created", obj=series,
                 data={k: values.get(k) for k in SERIES_FIELDS if k in values})
    generate_meetings(series)
    return series


def update_series(series: MeetingSeries, **values: Any) -> dict[str, list[Any]]:
    """Change a series; meetings already generated keep their own time and place."""
    diff = audit.changes(series, _clean_series_values(values))
    if diff:
        db.session.flush()
        audit.record("series.changed", f"Meeting series {series.id} changed", obj=series, data=diff)
    return diff


def occurrence_dates(series: MeetingSeries, weeks: int) -> list[date]:
    """Return the series' local dates from today for ``weeks`` weeks."""
    today = local_now(series.time_zone).date()
    first = today + timedelta(days=(series.weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range(weeks)]


def _existing_occurrences(series: MeetingSeries, dates: list[date]) -> set[date]:
    return set(db.session.scalars(
        select(Meeting.occurrence_date).where(Meeting.series_id == series.id,
                                              Meeting.occurrence_date.in_(dates))))


def generate_meetings(series: MeetingSeries, weeks: int = 8) -> list[Meeting]:
    """Create the series' missing upcoming meetings (idempotent); return the new ones."""
    if not series.is_active:
        return []
    dates = occurrence_dates(series, weeks)
    existing = _existing_occurrences(series, dates)
    created = []
    for day in dates:
        starts_at = local_to_utc(day, series.start_time, series.time_zone)
        if day in existing or starts_at <= clock.now():
            continue
        meeting = Meeting(series=series, occurrence_date=day, starts_at=starts_at,
                          duration_minutes=series.duration_minutes, time_zone=series.time_zone,
                          location=series.location, video_url=series.video_url,
                          chair_id=series.default_chair_id)
        db.session.add(meeting)
        created.append(meeting)
    try:
        db.session.flush()
    except IntegrityError as exc:  # uq series+occurrence: another request generated them
        raise ConflictError("These meetings were being scheduled by someone else at the same "
                            "moment. Reload the page: they are there.") from exc
    for meeting in created:
        notify.on_meeting_created(meeting)
    return created


# --- meetings ---------------------------------------------------------------

def get_meeting(meeting_id: int) -> Meeting:
    """Return a meeting or raise NotFoundError."""
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFoundError("No such meeting.")
    return meeting


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
        ))
    if meeting is None:
        raise NotFoundError("No such meeting.")
    return meeting


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
        .where(Attendance.user_id == user.id, Meeting.status == MeetingStatus.SCHEDULED,
               Meeting.starts_at > clock.now())
        .options(joinedload(Meeting.series)).order_by(Meeting.starts_at).limit(limit)))


def meetings_open_for_case(user: User, case: Case) -> list[Meeting]:
    """Return upcoming meetings ``user`` may add ``case`` to now (not already on them)."""
    on_agenda = select(AgendaItem.meeting_id).where(AgendaItem.case_id == case.id)
    meetings = db.session.scalars(
        select(Meeting).where(Meeting.status == MeetingStatus.SCHEDULED,
                              Meeting.starts_at > clock.now(), Meeting.id.not_in(on_agenda))
        .options(joinedload(Meeting.series)).order_by(Meeting.starts_at).limit(20))
    if _is_coordinator(user):
        return list(meetings)
    return [m for m in meetings if clock.now() < cutoff_at(m)]


def _require_scheduled(meeting: Meeting) -> None:
    if meeting.is_cancelled:
        raise InvalidError("This meeting is cancelled; nothing on it can change.")


def update_meeting(meeting: Meeting, *, expected_version: int | None, starts_at: datetime,
                   duration_minutes: int, location: str | None, video_url: str | None,
                   chair_id: int | None) -> dict[str, list[Any]]:
    """Reschedule, re-chair or move one meeting; refuse an edit based on a stale version."""
    _check_version(meeting, expected_version, "meeting")
    _require_scheduled(meeting)
    if duration_minutes <= 0:
        raise InvalidError("The duration must be positive.",
                           fields={"duration_minutes": "At least one minute."})
    if chair_id is not None:
        chair = db.session.get(User, chair_id)
        if chair is None or not chair.is_active:
            raise InvalidError("The chair must be an active user.",
                               fields={"chair_id": "Choose an active person."})
    diff = audit.changes(meeting, dict(
        starts_at=starts_at, duration_minutes=duration_minutes,
        location=(location or "").strip() or None, video_url=(video_url or "").strip() or None,
        chair_id=chair_id))
    if not diff:
        return diff
    meeting.sequence += 1
    _flush()
    audit.record("meeting.changed", f"Meeting {meeting.id} changed", obj=meeting, data=diff)
    if "starts_at" in diff or "duration_minutes" in diff:
        notify.on_meeting_rescheduled(meeting)
    return diff


def cancel_meeting(meeting: Meeting, *, reason: str, expected_version: int | None = None) -> None:
    """Cancel a meeting with a reason; its pending items can then be carried over."""
    _check_version(meeting, expected_version, "meeting")
    _require_scheduled(meeting)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidError("Say why the meeting is cancelled.", fields={"reason": "Required."})
    meeting.status = MeetingStatus.CANCELLED
    meeting.cancel_reason = reason
    meeting.sequence += 1
    _flush()
    audit.record("meeting.cancelled", f"Meeting {meeting.id} cancelled", obj=meeting,
                 data={"reason": reason})
    notify.on_meeting_cancelled(meeting)


# --- agenda -----------------------------------------------------------------

def get_item(item_id: int) -> AgendaItem:
    """Return an agenda item or raise NotFoundError."""
    item = db.session.get(AgendaItem, item_id)
    if item is None:
        raise NotFoundError("No such agenda item.")
    return item


def is_item_decided(item: AgendaItem) -> bool:
    """Return True if the item has a consensus or has left the pending state."""
    return item.consensus is not None or item.status != ItemStatus.PENDING


def addable_cases(user: User, meeting: Meeting) -> list[Case]:
    """Return the open cases ``user`` may put on ``meeting`` (not already on it)."""
    query = (select(Case).join(Case.patient).options(joinedload(Case.patient))
             .where(Case.status == CaseStatus.OPEN,
                    ~select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                  AgendaItem.case_id == Case.id).exists())
             .order_by(Case.id))
    if not user.has_role(Role.COORDINATOR, Role.ADMIN, Role.SPECIALIST):
        query = query.where(Case.referring_clinician_id == user.id)
    return list(db.session.scalars(query))


def may_propose_cases(user: User, case: Case | None = None) -> bool:
    """Return True if ``user`` may put cases on agendas at all (ignoring the cutoff)."""
    if user.has_role(Role.COORDINATOR, Role.ADMIN, Role.SPECIALIST):
        return True
    return case is not None and case.referring_clinician_id == user.id


def check_may_add(user: User, case: Case | None, meeting: Meeting) -> bool:
    """Raise ForbiddenError unless ``user`` may add ``case`` (any case if None) to ``meeting`` now.

    Return whether an addition now is late (after the cutoff; coordinators only).
    """
    late = clock.now() >= cutoff_at(meeting)
    if _is_coordinator(user):
        return late
    allowed = (may_propose_cases(user, case) if case is not None
               else user.has_role(Role.SPECIALIST, Role.CLINICIAN))
    if not allowed:
        raise ForbiddenError("Only a coordinator, a specialist or the referring clinician "
                             "can put this case on an agenda.")
    if late:
        raise ForbiddenError(
            "The submission cutoff for this meeting has passed; only a coordinator can add "
            "a case now. Ask the MDT coordinator, or choose a later meeting.")
    return False


def _next_position(meeting: Meeting) -> int:
    current = db.session.scalar(
        select(func.max(AgendaItem.position)).where(AgendaItem.meeting_id == meeting.id))
    return (current or 0) + 1


def _check_case_can_go_on(case: Case, meeting: Meeting) -> None:
    _require_scheduled(meeting)
    if clock.now() >= meeting.ends_at:
        raise InvalidError("This meeting is over; choose a later one.")
    if case.status != CaseStatus.OPEN:
        raise InvalidError("Only an open case can be put on an agenda.")
    if db.session.scalar(select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                      AgendaItem.case_id == case.id)):
        raise InvalidError("This case is already on this meeting's agenda.",
                           fields={"case_id": "Already on the agenda."})


def _check_presenter(presenter_id: int | None) -> None:
    if presenter_id is None:
        return
    presenter = db.session.get(User, presenter_id)
    if presenter is None or not presenter.is_active:
        raise InvalidError("The presenter must be an active user.",
                           fields={"presenter_id": "Choose an active person."})


def _check_minutes(minutes: int) -> None:
    if not minutes or minutes <= 0:
        raise InvalidError("Allot at least one minute.",
                           fields={"minutes_allotted": "At least one minute."})


def add_item(meeting: Meeting, case: Case, *, user: User, minutes_allotted: int = 10,
             presenter_id: int | None = None) -> AgendaItem:
    """Put a case on a meeting's agenda; after the cutoff only coordinators can, marked late."""
    late = check_may_add(user, case, meeting)
    _check_case_can_go_on(case, meeting)
    _check_minutes(minutes_allotted)
    _check_presenter(presenter_id)
    item = AgendaItem(meeting=meeting, case=case, position=_next_position(meeting),
                      minutes_allotted=minutes_allotted, presenter_id=presenter_id,
                      is_late=late, added_by_id=user.id)
    db.session.add(item)
    db.session.flush()
    audit.record("agenda_item.added",
                 f"Case {case.id} added to meeting {meeting.id}" + (" (late)" if late else ""),
                 obj=item, case_id=case.id,
                 data={"meeting_id": meeting.id, "position": item.position, "is_late": late,
                       "minutes_allotted": minutes_allotted, "presenter_id": presenter_id})
    notify.on_item_added(item)
    return item


def update_item(item: AgendaItem, *, expected_version: int | None, minutes_allotted: int,
                presenter_id: int | None) -> dict[str, list[Any]]:
    """Change an item's minutes allotted or presenter."""
    _check_version(item, expected_version, "agenda item")
    _check_minutes(minutes_allotted)
    _check_presenter(presenter_id)
    diff = audit.changes(item, dict(minutes_allotted=minutes_allotted, presenter_id=presenter_id))
    if diff:
        _flush()
        audit.record("agenda_item.changed", f"Agenda item {item.id} changed", obj=item,
                     case_id=item.case_id, data=diff)
    return diff


def remove_item(item: AgendaItem) -> None:
    """Take a pending item off the agenda; refused once anything was proposed or decided."""
    if is_item_decided(item):
        raise InvalidError("Only a pending, undecided item can be removed.")
    if item.proposals:
        raise InvalidError("Proposals were already made for this case, so it cannot be removed. "
                           "Withdraw it instead (the record and its proposals are kept).")
    if item.carried_from_id is not None:
        raise InvalidError("This item was carried over from an earlier meeting, so it cannot be "
                           "removed. Withdraw it instead (its history is kept).")
    meeting, case_id = item.meeting, item.case_id
    audit.record("agenda_item.removed", f"Case {case_id} removed from meeting {meeting.id}",
                 obj=item, case_id=case_id,
                 data={"meeting_id": meeting.id, "position": item.position,
                       "triage": item.triage, "is_late": item.is_late})
    meeting.items.remove(item)
    db.session.delete(item)
    for position, other in enumerate(meeting.items, start=1):
        other.position = position
    _flush()


def move_item(item: AgendaItem, direction: str) -> bool:
    """Swap an item with its neighbour ("up" or "down"); return False at either end."""
    if direction not in ("up", "down"):
        raise InvalidError("Move an item up or down.")
    items = sorted(item.meeting.items, key=lambda i: (i.position, i.id))
    index = items.index(item)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(items):
        return False
    other = items[other_index]
    items[index], items[other_index] = other, item
    for position, each in enumerate(items, start=1):
        each.position = position
    _flush()
    audit.record("agenda_item.moved", f"Agenda item {item.id} moved {direction}", obj=item,
                 case_id=item.case_id, data={"position": item.position, "direction": direction})
    return True


def triage_item(item: AgendaItem, triage: Triage | str) -> None:
    """Triage an item for discussion or as standard of care (listed, not discussed)."""
    triage = Triage(triage)
    if item.status != ItemStatus.PENDING:
        raise InvalidError("Only a pending item can be triaged.")
    if triage == Triage.FOR_DISCUSSION:
        ready = cases.readiness(item.case)
        if not ready.is_ready:
            raise InvalidError("This case cannot be triaged for discussion until it is ready. "
                               "Missing: " + "; ".join(ready.missing) + ".",
                               fields={"triage": "Missing: " + "; ".join(ready.missing)})
    diff = audit.changes(item, {"triage": triage})
    if diff:
        _flush()
        audit.record("agenda_item.triaged", f"Agenda item {item.id} triaged: {triage.label}",
                     obj=item, case_id=item.case_id, data=diff)


def set_item_status(item: AgendaItem, status: ItemStatus | str, reason: str | None = None) -> None:
    """Move a pending item to discussed, deferred (reason required) or withdrawn."""
    status = ItemStatus(status)
    reason = (reason or "").strip() or None
    if item.status != ItemStatus.PENDING:
        raise InvalidError(f"This item is already {item.status.label.lower()}.")
    if status == ItemStatus.PENDING:
        raise InvalidError("Choose discussed, deferred or withdrawn.")
    if status == ItemStatus.DEFERRED and not reason:
        raise InvalidError("Give a reason for deferring.", fields={"reason": "Required to defer."})
    if status == ItemStatus.DISCUSSED and not has_started(item.meeting):
        raise InvalidError("An item can be marked discussed once the meeting has started.")
    diff = audit.changes(item, {"status": status, "status_reason": reason})
    _flush()
    audit.record(f"agenda_item.{status.value}", f"Agenda item {item.id} {status.value}",
                 obj=item, case_id=item.case_id, data=diff)
    if status == ItemStatus.DEFERRED:
        notify.on_item_deferred(item)
    elif status == ItemStatus.WITHDRAWN:
        notify.on_item_withdrawn(item)


def next_meeting_after(meeting: Meeting) -> Meeting | None:
    """Return the series' next scheduled meeting after ``meeting`` and after now."""
    after = max(meeting.starts_at, clock.now())
    query = (select(Meeting).where(Meeting.series_id == meeting.series_id,
                                   Meeting.id != meeting.id,
                                   Meeting.status == MeetingStatus.SCHEDULED,
                                   Meeting.starts_at > after)
             .order_by(Meeting.starts_at).limit(1))
    found = db.session.scalar(query)
    if found is None:
        generate_meetings(meeting.series)
        found = db.session.scalar(query)
    return found


def _signed_deferred(item: AgendaItem) -> bool:
    """Return True if the chair signed the item's outcome as deferred."""
    from mdt.decisions.models import Outcome

    return item.consensus is not None and item.consensus.outcome == Outcome.DEFERRED


def can_carry_over(item: AgendaItem) -> bool:
    """Return True if the item is deferred or was not reached, and not carried yet.

    An item whose signed consensus says "deferred" is carried like any other
    deferred item; any other signed outcome is a decision and stays put.
    """
    if item.carried_to_id is not None:
        return False
    if item.consensus is not None and not _signed_deferred(item):
        return False
    if item.status == ItemStatus.DEFERRED:
        return True
    not_reached = has_started(item.meeting) or item.meeting.is_cancelled
    return item.status == ItemStatus.PENDING and not_reached


def carry_over(item: AgendaItem, *, user: User) -> AgendaItem:
    """Move a deferred or not-reached item, with its proposals, to the series' next meeting."""
    if item.carried_to_id is not None:
        raise InvalidError("This item was already carried over.")
    if item.consensus is not None and not _signed_deferred(item):
        raise InvalidError("This item is decided (a consensus is signed); it cannot be carried over.")
    if not can_carry_over(item):
        raise InvalidError("Only a deferred item, or one not reached in a meeting that has "
                           "started or was cancelled, can be carried over.")
    target = next_meeting_after(item.meeting)
    if target is None:
        raise InvalidError("The series has no later scheduled meeting to carry this item to.")
    if db.session.scalar(select(AgendaItem.id).where(AgendaItem.meeting_id == target.id,
                                                      AgendaItem.case_id == item.case_id)):
        raise InvalidError("This case is already on the agenda of the next meeting.")
    new_item = AgendaItem(meeting=target, case_id=item.case_id, position=_next_position(target),
                          minutes_allotted=item.minutes_allotted, presenter_id=item.presenter_id,
                          triage=item.triage, is_late=clock.now() >= cutoff_at(target),
                          added_by_id=user.id, carried_from_id=item.id)
    db.session.add(new_item)
    db.session.flush()
    if item.status == ItemStatus.PENDING:
        item.status, item.status_reason = ItemStatus.DEFERRED, NOT_REACHED
    item.carried_to_id = new_item.id
    proposal_ids = [p.id for p in item.proposals]
    for proposal in list(item.proposals):
        proposal.agenda_item = new_item
    _flush()
    data = {"from_item_id": item.id, "to_item_id": new_item.id, "from_meeting_id": item.meeting_id,
            "to_meeting_id": target.id, "proposal_ids": proposal_ids}
    audit.record("agenda_item.carried_over",
                 f"Agenda item {item.id} carried over to meeting {target.id}",
                 obj=item, case_id=item.case_id, data=data)
    audit.record("agenda_item.added", f"Case {item.case_id} carried over to meeting {target.id}",
                 obj=new_item, case_id=item.case_id, data=data)
    notify.on_item_added(new_item)
    notify.on_item_deferred(item, new_item)
    return new_item


# --- attendance -------------------------------------------------------------

def get_attendance(attendance_id: int) -> Attendance:
    """Return an attendance row or raise NotFoundError."""
    attendance = db.session.get(Attendance, attendance_id)
    if attendance is None:
        raise NotFoundError("No such attendee.")
    return attendance


def invite(meeting: Meeting, user: User) -> Attendance | None:
    """Invite a person to a meeting; return the new row, or None if already invited."""
    _require_scheduled(meeting)
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
                 obj=attendance, data={"meeting_id": meeting.id, "user_id": user.id})
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


def invite_core_team(meeting: Meeting) -> list[Attendance]:
    """Invite the chair and the core specialists; return the new rows (idempotent)."""
    added = [invite(meeting, person) for person in core_team(meeting)]
    return [a for a in added if a is not None]


def remove_attendee(attendance: Attendance) -> None:
    """Uninvite a person (the row goes; the audit entry stays)."""
    meeting = attendance.meeting
    notify.on_attendee_removed(attendance)
    audit.record("attendance.removed",
                 f"User {attendance.user_id} removed from meeting {meeting.id}", obj=attendance,
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
    _require_scheduled(attendance.meeting)
    diff = audit.changes(attendance, {"response": response})
    if diff:
        db.session.flush()
        audit.record("attendance.responded", f"User {user.id} answered {response.value}",
                     obj=attendance, data=diff)


def may_record_presence(user: User, meeting: Meeting) -> bool:
    """Coordinators, admins and the meeting's chair record who is present."""
    return _is_coordinator(user) or (meeting.chair_id is not None and meeting.chair_id == user.id)


def presence_open(meeting: Meeting) -> bool:
    """Return True from the meeting's local day on (presence is recorded on the day)."""
    local_day = meeting.starts_at.astimezone(zone(meeting.time_zone)).date()
    return local_now(meeting.time_zone).date() >= local_day


def record_presence(attendance: Attendance, user: User, presence: Presence | str) -> None:
    """Mark an attendee present or absent, from the day of the meeting."""
    presence = Presence(presence)
    meeting = attendance.meeting
    if not may_record_presence(user, meeting):
        raise ForbiddenError("Only a coordinator or the meeting's chair records who is present.")
    _require_scheduled(meeting)
    if not presence_open(meeting):
        raise InvalidError("Presence is recorded on the day of the meeting.")
    diff = audit.changes(attendance, {"presence": presence})
    if diff:
        db.session.flush()
        audit.record("attendance.presence", f"User {attendance.user_id} {presence.value}",
                     obj=attendance, data=diff)


@dataclass(frozen=True)
class Quorum:
    is_quorate: bool
    present_disciplines: list[Discipline]
    missing_disciplines: list[Discipline]
    present_attendees: list[Attendance]


def quorum(meeting: Meeting) -> Quorum:
    """Quorate when every core discipline of the series has someone marked present."""
    core = [Discipline(d) for d in meeting.series.core_disciplines]
    # One query with the people, whatever the number of attendees.
    present = list(db.session.scalars(
        select(Attendance).where(Attendance.meeting_id == meeting.id,
                                 Attendance.presence == Presence.PRESENT)
        .options(joinedload(Attendance.user)).order_by(Attendance.id)))
    seen = {a.user.discipline for a in present}
    present_core = [d for d in core if d in seen]
    missing = [d for d in core if d not in seen]
    return Quorum(is_quorate=bool(present) and not missing, present_disciplines=present_core,
                  missing_disciplines=missing, present_attendees=present)


def visible_case_ids(user: User, case_ids: Iterable[int]) -> set[int]:
    """Return which of ``case_ids`` ``user`` may read (one query at most)."""
    case_ids = set(case_ids)
    if not case_ids or cases.sees_all_cases(user):
        return case_ids
    return set(db.session.scalars(
        select(Case.id).where(Case.id.in_(case_ids), cases.concerns_user_clause(user))))
