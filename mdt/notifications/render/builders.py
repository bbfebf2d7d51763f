"""One builder per kind: decide whether the row is still relevant, and what its e-mail says."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from mdt import clock
from mdt.auth.models import Role, User
from mdt.cases.models import Case
from mdt.decisions import services as decisions
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
)
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    Response,
)
from mdt.notifications import ics
from mdt.notifications.models import Notification, NotificationKind
from mdt.notifications.render.context import (
    Draft,
    agenda,
    base_context,
    describe_offset,
    format_when,
    invitation_is_update,
    is_attendee,
    link,
    notification_meeting,
    recipient_zone,
    upcoming_meeting,
)
from mdt.notifications.services import rows


def _invitation(notification: Notification) -> Draft | None:
    method = notification.payload.get("method", ics.REQUEST)
    if method == ics.CANCEL:
        return _calendar_cancel(notification)
    meeting = upcoming_meeting(notification)
    if meeting is None or not is_attendee(meeting, notification.recipient):
        return None
    ctx = base_context(notification, meeting)
    is_update = invitation_is_update(notification.payload)
    ctx.update(is_update=is_update, agenda=agenda(meeting))
    verb = "Updated" if is_update else "Invitation"
    subject = f"{verb}: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx, (ics.invitation(meeting, notification.recipient), ics.REQUEST))


def _calendar_cancel(notification: Notification) -> Draft | None:
    meeting = notification_meeting(notification)
    if meeting is None or meeting.has_started:
        return None
    removed = notification.payload.get("reason") == "removed"
    if removed and is_attendee(meeting, notification.recipient):
        return None  # invited again since: the cancellation no longer holds
    rnd = notification.payload.get("round")
    if rnd is not None and not rows.was_sent_invitation(meeting.id, notification.recipient_id,
                                                        int(rnd)):
        return None  # the invitation never went out (it failed): nothing to cancel
    ctx = base_context(notification, meeting)
    ctx.update(removed=removed, is_cancel=True)
    if removed:
        subject = f"Removed from: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    else:
        subject = f"Cancelled: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx, (ics.invitation(meeting, notification.recipient, ics.CANCEL),
                                ics.CANCEL))


def _meeting_reminder(notification: Notification) -> Draft | None:
    meeting = upcoming_meeting(notification)
    if meeting is None or not is_attendee(meeting, notification.recipient):
        return None
    ctx = base_context(notification, meeting)
    offset = int(notification.payload.get("offset_minutes", 0))
    ctx.update(agenda=agenda(meeting), offset=describe_offset(offset) if offset else None)
    subject = f"Reminder: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx)


def _agenda_closing(notification: Notification) -> Draft | None:
    meeting = upcoming_meeting(notification)
    if meeting is None:
        return None
    cutoff = meetings.cutoff_at(meeting)
    if cutoff <= clock.now():
        return None
    user = notification.recipient
    waiting = [] if user.has_role(Role.COORDINATOR) else waiting_cases(user)
    if not user.has_role(Role.COORDINATOR) and not waiting:
        return None  # a referrer with nothing to put forward needs no nudge
    ctx = base_context(notification, meeting)
    ctx.update(cutoff=cutoff, waiting=waiting, agenda=agenda(meeting),
               case_link=lambda case: link("cases.detail", case_id=case.id))
    subject = (f"Agenda closing {ctx['when'](cutoff)}: {meeting.series.name}, "
               f"{ctx['when'](meeting.starts_at)}")
    return Draft(subject, ctx)


def waiting_cases(user: User) -> list[Case]:
    """Return ``user``'s referrals waiting for an agenda (``waiting_for_agenda_clause``)."""
    return list(db.session.scalars(
        sa.select(Case).where(Case.referring_clinician_id == user.id,
                              meetings.waiting_for_agenda_clause())
        .options(selectinload(Case.patient)).order_by(Case.id)))


def _opinion_pending(notification: Notification) -> Draft | None:
    meeting = upcoming_meeting(notification)
    user = notification.recipient
    if meeting is None or not _will_attend(meeting, user):
        return None
    items = awaiting_opinion(meeting, user)
    if not items:
        return None
    ctx = base_context(notification, meeting)
    ctx.update(items=items)
    count = len(items)
    subject = (f"Your opinion is awaited on {count} case{'' if count == 1 else 's'}: "
               f"{meeting.series.name}, {ctx['when'](meeting.starts_at)}")
    return Draft(subject, ctx)


def awaiting_opinion(meeting: Meeting, user: User) -> list[tuple[AgendaItem, int]]:
    """Return the meeting's items awaiting ``user``'s opinion, each with how many proposals.

    The rule is ``decisions.services.items_awaiting_opinion``, as on the home page.
    """
    return decisions.items_awaiting_opinion(user, meeting=meeting)


def _will_attend(meeting: Meeting, user: User) -> bool:
    response = db.session.scalar(sa.select(Attendance.response).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == user.id))
    return response in (Response.INVITED, Response.ACCEPTED)


def _consensus_context(notification: Notification,
                       consensus: Consensus) -> dict[str, Any]:
    item = consensus.agenda_item
    ctx = base_context(notification)
    ctx["zone"] = recipient_zone(notification.recipient, item.meeting)
    zone = ctx["zone"]
    ctx.update(when=lambda moment: format_when(moment, zone), consensus=consensus, item=item,
               case=item.case, case_meeting=item.meeting,
               role=notification.payload.get("role"),
               report_link=link("decisions.report", case_id=item.case_id))
    return ctx


def _consensus_signed(notification: Notification) -> Draft | None:
    consensus = db.session.get(Consensus, notification.payload.get("consensus_id"))
    if consensus is None:
        return None
    ctx = _consensus_context(notification, consensus)
    return Draft(f"Consensus signed: Case {ctx['case'].id}", ctx)


def _amendment(notification: Notification) -> Draft | None:
    amendment = db.session.get(Amendment, notification.payload.get("amendment_id"))
    if amendment is None:
        return None
    ctx = _consensus_context(notification, amendment.consensus)
    ctx.update(amendment=amendment)
    return Draft(f"Consensus amended: Case {ctx['case'].id}", ctx)


def _action_due(notification: Notification) -> Draft | None:
    action = db.session.get(ConsensusAction, notification.payload.get("action_id"))
    if action is None or action.owner_id != notification.recipient_id or action.due_on is None:
        return None
    ctx = _consensus_context(notification, action.consensus)
    overdue = bool(notification.payload.get("overdue"))
    ctx.update(action=action, overdue=overdue)
    state = "overdue" if overdue else "due today"
    return Draft(f"Action {state}: Case {ctx['case'].id}", ctx)


def _case_deferred(notification: Notification) -> Draft | None:
    item = db.session.get(AgendaItem, notification.payload.get("item_id"))
    if item is None:
        return None
    new_item_id = notification.payload.get("new_item_id") or item.carried_to_id
    new_item = db.session.get(AgendaItem, new_item_id) if new_item_id else None
    if new_item is not None and new_item.status == ItemStatus.WITHDRAWN:
        return None
    ctx = base_context(notification, item.meeting)
    ctx.update(item=item, case=item.case, new_item=new_item,
               new_meeting=new_item.meeting if new_item else None,
               case_link=link("cases.detail", case_id=item.case_id))
    if new_item is not None:
        subject = (f"Case carried over: Case {item.case_id} to "
                   f"{ctx['when'](new_item.meeting.starts_at)}")
    else:
        subject = f"Case deferred: Case {item.case_id}"
    return Draft(subject, ctx)


BUILDERS: dict[NotificationKind, Callable[[Notification], Draft | None]] = {
    NotificationKind.INVITATION: _invitation,
    NotificationKind.MEETING_REMINDER: _meeting_reminder,
    NotificationKind.AGENDA_CLOSING: _agenda_closing,
    NotificationKind.OPINION_PENDING: _opinion_pending,
    NotificationKind.CONSENSUS_SIGNED: _consensus_signed,
    NotificationKind.AMENDMENT: _amendment,
    NotificationKind.ACTION_DUE: _action_due,
    NotificationKind.CASE_DEFERRED: _case_deferred,
}
