"""What each person's home page lists: read-only queries, a fixed number per page."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from mdt import clock
from mdt.auth.models import Role, User
from mdt.cases.models import Case, CaseStatus
from mdt.cases.services import concerns_user_clause, sees_all_cases
from mdt.decisions.models import Consensus, Opinion, Proposal
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    MeetingStatus,
    Triage,
)


@dataclass(frozen=True)
class MeetingRow:
    meeting: Meeting
    item_count: int


def next_meetings(user: User, limit: int = 5) -> list[MeetingRow]:
    """Upcoming meetings: those the person is invited to, or all of them for coordinators."""
    items = (select(func.count(AgendaItem.id)).where(AgendaItem.meeting_id == Meeting.id)
             .correlate(Meeting).scalar_subquery())
    query = (select(Meeting, items)
             .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at >= clock.now())
             .options(joinedload(Meeting.series), joinedload(Meeting.chair))
             .order_by(Meeting.starts_at).limit(limit))
    if not user.has_role(Role.COORDINATOR, Role.ADMIN):
        query = query.where(exists().where(Attendance.meeting_id == Meeting.id,
                                           Attendance.user_id == user.id))
    return [MeetingRow(meeting, count) for meeting, count in db.session.execute(query)]


def awaiting_my_opinion(user: User, limit: int = 20) -> list[AgendaItem]:
    """Items for discussion, still open, with a proposal this specialist has not given an opinion on."""
    if not user.has_role(Role.SPECIALIST):
        return []
    mine = exists().where(Opinion.proposal_id == Proposal.id, Opinion.user_id == user.id)
    open_proposal = exists().where(Proposal.agenda_item_id == AgendaItem.id,
                                   Proposal.is_withdrawn.is_(False), ~mine)
    query = (select(AgendaItem).join(AgendaItem.meeting)
             .where(AgendaItem.status == ItemStatus.PENDING,
                    AgendaItem.triage == Triage.FOR_DISCUSSION,
                    AgendaItem.carried_to_id.is_(None),
                    Meeting.status == MeetingStatus.SCHEDULED,
                    ~exists().where(Consensus.agenda_item_id == AgendaItem.id),
                    open_proposal)
             .options(joinedload(AgendaItem.meeting).joinedload(Meeting.series),
                      joinedload(AgendaItem.case).joinedload(Case.patient))
             .order_by(Meeting.starts_at, AgendaItem.position).limit(limit))
    return list(db.session.scalars(query))


def recent_consensus(user: User, limit: int = 10) -> list[Consensus]:
    """The latest signed consensus records the person may read."""
    query = (select(Consensus).join(Consensus.agenda_item).join(AgendaItem.case)
             .options(joinedload(Consensus.agenda_item).joinedload(AgendaItem.case)
                      .joinedload(Case.patient),
                      joinedload(Consensus.agenda_item).joinedload(AgendaItem.meeting),
                      joinedload(Consensus.signed_by))
             .order_by(Consensus.signed_at.desc()).limit(limit))
    if not sees_all_cases(user):
        query = query.where(concerns_user_clause(user))
    return list(db.session.scalars(query))


def my_open_cases(user: User, limit: int = 20) -> list[Case]:
    """Open cases the person referred, newest first, with their agenda history."""
    query = (select(Case).where(Case.referring_clinician_id == user.id,
                                Case.status == CaseStatus.OPEN)
             .options(joinedload(Case.patient))
             .order_by(Case.created_at.desc()).limit(limit))
    return list(db.session.scalars(query))


def cases_not_on_an_agenda(limit: int = 20) -> list[Case]:
    """Open cases waiting for a place on an agenda (for coordinators to chase)."""
    on_agenda = exists().where(and_(AgendaItem.case_id == Case.id,
                                    AgendaItem.status == ItemStatus.PENDING))
    decided = exists().where(AgendaItem.case_id == Case.id,
                             AgendaItem.status == ItemStatus.DISCUSSED)
    query = (select(Case).where(Case.status == CaseStatus.OPEN, ~on_agenda, ~decided)
             .options(joinedload(Case.patient), joinedload(Case.referring_clinician),
                      selectinload(Case.references))
             .order_by(Case.created_at).limit(limit))
    return list(db.session.scalars(query))
