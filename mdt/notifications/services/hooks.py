"""The ``on_*`` hooks other features' services call, in the transaction of the change."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mdt import clock
from mdt.auth.models import User
from mdt.extensions import db
from mdt.meetings.models import Attendance, Meeting
from mdt.notifications.models import Notification, NotificationStatus
from mdt.notifications.services.rows import (
    MEETING_TIMED,
    NOT_A_CANCELLATION,
    K,
    agenda_closing_due,
    agenda_closing_recipient_ids,
    cancel_rows,
    find_row,
    invitation_prefix,
    morning_of,
    opinion_due,
    pending_rows,
    reminder_due,
    schedule,
    schedule_many,
    schedule_opinion_pending,
    schedule_reminders,
    was_sent_invitation,
    zone_for,
)

if TYPE_CHECKING:
    from mdt.decisions.models import Amendment, Consensus
    from mdt.meetings.models import AgendaItem


def on_meeting_created(meeting: Meeting) -> None:
    """Schedule the meeting-wide notifications (agenda closing) for a new meeting."""
    cutoff = meeting.cutoff_at
    if not meeting.is_upcoming or cutoff <= clock.now():
        return
    entries = [(user_id, f"agenda_closing:m{meeting.id}:u{user_id}")
               for user_id in agenda_closing_recipient_ids()]
    schedule_many(K.AGENDA_CLOSING, entries, agenda_closing_due(meeting), meeting_id=meeting.id)


def on_meeting_rescheduled(meeting: Meeting) -> None:
    """Move pending reminders to the new time and send calendar updates (time, place, link)."""
    now = clock.now()
    for row in pending_rows(Notification.meeting_id == meeting.id,
                            Notification.kind.in_(MEETING_TIMED)):
        due = _new_due(meeting, row)
        if due is None or (due <= now and row.kind == K.MEETING_REMINDER):
            row.status = NotificationStatus.CANCELLED
        else:
            row.due_at = max(due, now)
    db.session.flush()
    if not meeting.is_upcoming:
        return
    has_items = bool(meeting.items)
    for attendance in meeting.attendances:
        schedule_reminders(meeting, attendance.user_id)
        _invite(attendance)
        if has_items:
            schedule_opinion_pending(meeting, attendance.user)


def _new_due(meeting: Meeting, row: Notification) -> datetime | None:
    if row.kind == K.MEETING_REMINDER:
        return reminder_due(meeting, int(row.payload.get("offset_minutes", 0)))
    if row.kind == K.AGENDA_CLOSING:
        cutoff = meeting.cutoff_at
        return agenda_closing_due(meeting) if cutoff > clock.now() else None
    return opinion_due(meeting)


def on_meeting_cancelled(meeting: Meeting) -> None:
    """Cancel pending notifications of the meeting; send a CANCEL to those who were invited."""
    cancel_rows(pending_rows(Notification.meeting_id == meeting.id, NOT_A_CANCELLATION))
    if meeting.has_started:
        return
    for attendance in meeting.attendances:
        _send_cancel(attendance, reason="cancelled")


def on_attendee_added(attendance: Attendance) -> None:
    """Invite the person (with .ics) and schedule their reminders."""
    meeting = attendance.meeting
    if attendance.id is None:
        db.session.flush()
    if not meeting.is_upcoming:
        return
    # Invited again after a removal: a CANCEL not yet sent must not follow the new invitation.
    cancel_rows(pending_rows(Notification.dedup_key.startswith(
        f"calendar_cancel:m{meeting.id}:u{attendance.user_id}:", autoescape=True)))
    _invite(attendance)
    schedule_reminders(meeting, attendance.user_id)
    if meeting.items:
        schedule_opinion_pending(meeting, attendance.user)


def on_attendee_removed(attendance: Attendance) -> None:
    """Cancel the person's pending notifications and send a calendar cancellation."""
    meeting = attendance.meeting
    cancel_rows(pending_rows(Notification.meeting_id == meeting.id,
                     Notification.recipient_id == attendance.user_id,
                     Notification.kind != K.AGENDA_CLOSING, NOT_A_CANCELLATION))
    if not meeting.has_started:
        _send_cancel(attendance, reason="removed")


def _round(meeting_id: int, user_id: int) -> int:
    """How many times the person was sent a cancellation for the meeting (removed, re-invited)."""
    return db.session.scalar(sa.select(sa.func.count(Notification.id)).where(
        Notification.dedup_key.startswith(f"calendar_cancel:m{meeting_id}:u{user_id}:",
                                          autoescape=True))) or 0


def _invite(attendance: Attendance) -> None:
    """Invite the person, or send them an update if they were sent an invitation before."""
    meeting = attendance.meeting
    rnd = _round(meeting.id, attendance.user_id)
    prefix = invitation_prefix(meeting.id, attendance.user_id, rnd)
    pending = pending_rows(Notification.dedup_key.startswith(prefix, autoescape=True))
    if pending:
        # Not sent yet: it will describe the meeting as it is when it goes.
        return
    # An update only for someone whose calendar holds the earlier invitation.
    update = was_sent_invitation(meeting.id, attendance.user_id, rnd)
    schedule(K.INVITATION, attendance.user_id, f"{prefix}s{meeting.sequence}", clock.now(),
             meeting_id=meeting.id, payload={"method": "REQUEST", "sequence": meeting.sequence,
                                             "round": rnd, "update": update})


def _send_cancel(attendance: Attendance, *, reason: str) -> None:
    """Send a CANCEL for the current round, once, only if an invitation or update went out."""
    meeting = attendance.meeting
    rnd = _round(meeting.id, attendance.user_id)
    if not was_sent_invitation(meeting.id, attendance.user_id, rnd):
        return  # nothing of this meeting is in their calendar
    key = f"calendar_cancel:m{meeting.id}:u{attendance.user_id}:r{rnd}"
    schedule(K.INVITATION, attendance.user_id, key, clock.now(), meeting_id=meeting.id,
             payload={"method": "CANCEL", "reason": reason, "sequence": meeting.sequence,
                      "round": rnd})


def on_item_added(item: AgendaItem) -> None:
    """Schedule opinion-pending reminders for the specialists invited to the item's meeting."""
    meeting = item.meeting
    if not meeting.is_upcoming:
        return
    for attendance in meeting.attendances:
        schedule_opinion_pending(meeting, attendance.user)


def on_item_deferred(item: AgendaItem, new_item: AgendaItem | None = None) -> None:
    """Tell the referrer their case was deferred or carried over (reason, new date)."""
    referrer_id = item.case.referring_clinician_id
    key = f"case_deferred:i{item.id}"
    payload: dict[str, Any] = {"item_id": item.id}
    if new_item is not None:
        payload["new_item_id"] = new_item.id
        first = find_row(key)
        if first is not None and first.status != NotificationStatus.PENDING:
            key = f"{key}:to{new_item.id}"  # the first message went without the new date
    schedule(K.CASE_DEFERRED, referrer_id, key, clock.now(), meeting_id=item.meeting_id,
             case_id=item.case_id, payload=payload)


def on_item_withdrawn(item: AgendaItem) -> None:
    """Cancel pending notifications about a withdrawn case."""
    rows = pending_rows(Notification.case_id == item.case_id)
    cancel_rows(row for row in rows if row.meeting_id == item.meeting_id
            or row.payload.get("new_item_id") == item.id)


def _clinicians(consensus: Consensus) -> list[tuple[int, str]]:
    """Return the referring and responsible clinicians, once each (responsible wins)."""
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
    if owner is None:
        return
    zone = zone_for(owner, consensus.agenda_item.meeting.time_zone)
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
