"""Carrying a deferred or not-reached item over to the series' next meeting."""
from __future__ import annotations

from sqlalchemy import select

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.db import flush_or_conflict
from mdt.errors import InvalidError
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, ItemStatus, Meeting, MeetingStatus
from mdt.meetings.services.meetings import cutoff_at, has_started, lock_meeting
from mdt.meetings.services.ordering import AGENDA_CHANGED, next_position
from mdt.meetings.services.series import generate_meetings
from mdt.notifications import services as notify

#: The status reason of an item the meeting did not reach.
NOT_REACHED = "Not reached"


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


def carry_over(item: AgendaItem, *, actor: User) -> AgendaItem:
    """Move a deferred or not-reached item, with its proposals, to the series' next meeting."""
    if item.carried_to_id is not None:
        raise InvalidError("This item was already carried over.")
    if item.consensus is not None and not _signed_deferred(item):
        raise InvalidError("This item is decided (a consensus is signed); it cannot be "
                           "carried over.")
    if not can_carry_over(item):
        raise InvalidError("Only a deferred item, or one not reached in a meeting that has "
                           "started or was cancelled, can be carried over.")
    target = next_meeting_after(item.meeting)
    if target is None:
        raise InvalidError("The series has no later scheduled meeting to carry this item to.")
    lock_meeting(target)
    if db.session.scalar(select(AgendaItem.id).where(AgendaItem.meeting_id == target.id,
                                                      AgendaItem.case_id == item.case_id)):
        raise InvalidError("This case is already on the agenda of the next meeting.")
    new_item = AgendaItem(meeting=target, case_id=item.case_id, position=next_position(target),
                          minutes_allotted=item.minutes_allotted, presenter_id=item.presenter_id,
                          triage=item.triage, is_late=clock.now() >= cutoff_at(target),
                          added_by_id=actor.id, carried_from_id=item.id)
    db.session.add(new_item)
    flush_or_conflict(AGENDA_CHANGED, integrity=True)
    if item.status == ItemStatus.PENDING:
        item.status, item.status_reason = ItemStatus.DEFERRED, NOT_REACHED
    item.carried_to_id = new_item.id
    proposal_ids = [p.id for p in item.proposals]
    for proposal in list(item.proposals):
        proposal.agenda_item = new_item
    flush_or_conflict()
    data = {"from_item_id": item.id, "to_item_id": new_item.id, "from_meeting_id": item.meeting_id,
            "to_meeting_id": target.id, "proposal_ids": proposal_ids}
    audit.record("agenda_item.carried_over",
                 f"Agenda item {item.id} carried over to meeting {target.id}",
                 actor=actor, obj=item, case_id=item.case_id, data=data)
    audit.record("agenda_item.added", f"Case {item.case_id} carried over to meeting {target.id}",
                 actor=actor, obj=new_item, case_id=item.case_id, data=data)
    notify.on_item_added(new_item)
    notify.on_item_deferred(item, new_item)
    return new_item
