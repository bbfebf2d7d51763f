"""The agenda: putting cases on a meeting, ordering, triage and item status."""
from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import Role, User
from mdt.auth.permissions import can_coordinate
from mdt.cases import services as cases
from mdt.cases.models import Case, CaseStatus
from mdt.db import flush_or_conflict, get_or_404
from mdt.errors import ForbiddenError, ImmutableError, InvalidError
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, ItemStatus, Meeting, Triage
from mdt.meetings.services.meetings import (
    check_active_user,
    check_version,
    cutoff_at,
    has_started,
    lock_meeting,
    require_scheduled,
    upcoming_clause,
)
from mdt.meetings.services.ordering import AGENDA_CHANGED, next_position, renumber
from mdt.notifications import services as notify

#: Roles that may put any case on an agenda (clinicians only their own referrals).
PROPOSING_ROLES = (Role.COORDINATOR, Role.ADMIN, Role.SPECIALIST)


def get_item(item_id: int) -> AgendaItem:
    """Return an agenda item or raise NotFoundError."""
    return get_or_404(AgendaItem, item_id, "No such agenda item.")


def is_item_decided(item: AgendaItem) -> bool:
    """Return True if the item has a consensus or has left the pending state."""
    return item.consensus is not None or item.status != ItemStatus.PENDING


def waiting_for_agenda_clause() -> Any:
    """Return the SQL condition on ``Case``: open, on no upcoming agenda, and not decided.

    "On an agenda" means a pending item of a scheduled meeting that has not
    started; "decided" means a signed consensus that agreed a recommendation
    (a deferral or "no consensus" sends the case back to be scheduled). The
    coordinators' home page and the referrers' agenda-closing e-mail both list
    the cases this holds for.
    """
    from mdt.decisions.models import Consensus, Outcome

    on_agenda = exists().where(
        AgendaItem.case_id == Case.id, AgendaItem.status == ItemStatus.PENDING,
        AgendaItem.meeting_id.in_(select(Meeting.id).where(upcoming_clause())))
    decided = exists().where(
        AgendaItem.case_id == Case.id, Consensus.agenda_item_id == AgendaItem.id,
        Consensus.outcome == Outcome.AGREED)
    return (Case.status == CaseStatus.OPEN) & ~on_agenda & ~decided


def addable_cases(user: User, meeting: Meeting) -> list[Case]:
    """Return the open cases ``user`` may put on ``meeting`` (not already on it)."""
    query = (select(Case).join(Case.patient).options(joinedload(Case.patient))
             .where(Case.status == CaseStatus.OPEN,
                    ~select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                  AgendaItem.case_id == Case.id).exists())
             .order_by(Case.id))
    if not user.has_role(*PROPOSING_ROLES):
        query = query.where(Case.referring_clinician_id == user.id)
    return list(db.session.scalars(query))


def can_propose_cases(user: User, case: Case | None = None) -> bool:
    """Return True if ``user`` may put cases on agendas at all (ignoring the cutoff)."""
    if user.has_role(*PROPOSING_ROLES):
        return True
    return case is not None and case.referring_clinician_id == user.id


def check_can_add(user: User, case: Case | None, meeting: Meeting) -> bool:
    """Raise ForbiddenError unless ``user`` may add ``case`` (any case if None) to ``meeting`` now.

    Return whether an addition now is late (after the cutoff; coordinators only).
    """
    late = clock.now() >= cutoff_at(meeting)
    if can_coordinate(user):
        return late
    allowed = (can_propose_cases(user, case) if case is not None
               else user.has_role(Role.SPECIALIST, Role.CLINICIAN))
    if not allowed:
        raise ForbiddenError("Only a coordinator, a specialist or the referring clinician "
                             "can put this case on an agenda.")
    if late:
        raise ForbiddenError(
            "The submission cutoff for this meeting has passed; only a coordinator can add "
            "a case now. Ask the MDT coordinator, or choose a later meeting.")
    return False


def can_add_cases(user: User, meeting: Meeting) -> bool:
    """Return True if ``user`` may put some case on ``meeting`` now (the "Add a case" button)."""
    if meeting.is_cancelled or clock.now() >= meeting.ends_at:
        return False
    try:
        check_can_add(user, None, meeting)
    except ForbiddenError:
        return False
    return True


def can_edit_item(item: AgendaItem) -> bool:
    """Return True while the item's minutes and presenter may change (until it is decided)."""
    return not is_item_decided(item)


def check_can_edit_item(item: AgendaItem) -> None:
    """Raise ImmutableError once the item is decided: its presenter is part of the record."""
    if can_edit_item(item):
        return
    message = (f"This item is {item.status.label.lower()}: its presenter and minutes are part "
               "of its record and can no longer change.")
    if item.consensus is not None:
        message += " To correct the record, add an amendment to its consensus."
    raise ImmutableError(message)


def can_remove_item(item: AgendaItem) -> bool:
    """Return True if ``item`` may be taken off the agenda (else it is withdrawn)."""
    return (not is_item_decided(item) and not item.proposals
            and item.carried_from_id is None)


def _check_case_can_go_on(case: Case, meeting: Meeting) -> None:
    require_scheduled(meeting)
    if clock.now() >= meeting.ends_at:
        raise InvalidError("This meeting is over; choose a later one.")
    if case.status != CaseStatus.OPEN:
        raise InvalidError("Only an open case can be put on an agenda.")
    if db.session.scalar(select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                      AgendaItem.case_id == case.id)):
        raise InvalidError("This case is already on this meeting's agenda.",
                           fields={"case_id": "Already on the agenda."})


def _check_minutes(minutes: int) -> None:
    if not minutes or minutes <= 0:
        raise InvalidError("Allot at least one minute.",
                           fields={"minutes_allotted": "At least one minute."})


def add_item(meeting: Meeting, case: Case, *, actor: User, minutes_allotted: int = 10,
             presenter_id: int | None = None) -> AgendaItem:
    """Put a case on a meeting's agenda; after the cutoff only coordinators can, marked late."""
    lock_meeting(meeting)
    late = check_can_add(actor, case, meeting)
    _check_case_can_go_on(case, meeting)
    _check_minutes(minutes_allotted)
    check_active_user(presenter_id, "presenter_id", "The presenter must be an active user.")
    item = AgendaItem(meeting=meeting, case=case, position=next_position(meeting),
                      minutes_allotted=minutes_allotted, presenter_id=presenter_id,
                      is_late=late, added_by_id=actor.id)
    db.session.add(item)
    flush_or_conflict(AGENDA_CHANGED, integrity=True)
    audit.record("agenda_item.added",
                 f"Case {case.id} added to meeting {meeting.id}" + (" (late)" if late else ""),
                 actor=actor, obj=item, case_id=case.id,
                 data={"meeting_id": meeting.id, "position": item.position, "is_late": late,
                       "minutes_allotted": minutes_allotted, "presenter_id": presenter_id})
    notify.on_item_added(item)
    return item


def update_item(item: AgendaItem, *, actor: User | None, expected_version: int | None,
                minutes_allotted: int, presenter_id: int | None) -> dict[str, list[Any]]:
    """Change an item's minutes allotted or presenter, until it is decided."""
    check_version(item, expected_version, "agenda item")
    check_can_edit_item(item)
    _check_minutes(minutes_allotted)
    check_active_user(presenter_id, "presenter_id", "The presenter must be an active user.")
    diff = audit.changes(item, dict(minutes_allotted=minutes_allotted, presenter_id=presenter_id))
    if diff:
        flush_or_conflict()
        audit.record("agenda_item.changed", f"Agenda item {item.id} changed", actor=actor,
                     obj=item, case_id=item.case_id, data=diff)
    return diff


def _why_not_removable(item: AgendaItem) -> str:
    if is_item_decided(item):
        return "Only a pending, undecided item can be removed."
    if item.proposals:
        return ("Proposals were already made for this case, so it cannot be removed. "
                "Withdraw it instead (the record and its proposals are kept).")
    return ("This item was carried over from an earlier meeting, so it cannot be removed. "
            "Withdraw it instead (its history is kept).")


def remove_item(item: AgendaItem, *, actor: User | None) -> None:
    """Take a pending item off the agenda; refused once anything was proposed or decided."""
    lock_meeting(item.meeting, with_items=True)
    if not can_remove_item(item):
        raise InvalidError(_why_not_removable(item))
    meeting, case_id = item.meeting, item.case_id
    audit.record("agenda_item.removed", f"Case {case_id} removed from meeting {meeting.id}",
                 actor=actor, obj=item, case_id=case_id,
                 data={"meeting_id": meeting.id, "position": item.position,
                       "triage": item.triage, "is_late": item.is_late})
    meeting.items.remove(item)
    db.session.delete(item)
    renumber(meeting.items)


def triage_item(item: AgendaItem, triage: Triage | str, *, actor: User | None) -> None:
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
        flush_or_conflict()
        audit.record("agenda_item.triaged", f"Agenda item {item.id} triaged: {triage.label}",
                     actor=actor, obj=item, case_id=item.case_id, data=diff)


def set_item_status(item: AgendaItem, status: ItemStatus | str, reason: str | None = None, *,
                    actor: User | None) -> None:
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
    flush_or_conflict()
    audit.record(f"agenda_item.{status.value}", f"Agenda item {item.id} {status.value}",
                 actor=actor, obj=item, case_id=item.case_id, data=diff)
    if status == ItemStatus.DEFERRED:
        notify.on_item_deferred(item)
    elif status == ItemStatus.WITHDRAWN:
        notify.on_item_withdrawn(item)
