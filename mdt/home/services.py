"""What each person's home page lists: read-only queries, a fixed number per page."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from mdt.auth.models import User
from mdt.auth.permissions import can_coordinate
from mdt.cases.models import Case, CaseStatus
from mdt.cases.services import can_read_all_cases, concerns_user_clause
from mdt.decisions import services as decisions
from mdt.decisions.models import Consensus
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    Meeting,
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
             .where(meetings.upcoming_clause())
             .options(joinedload(Meeting.series), joinedload(Meeting.chair))
             .order_by(Meeting.starts_at).limit(limit))
    if not can_coordinate(user):
        query = query.where(exists().where(Attendance.meeting_id == Meeting.id,
                                           Attendance.user_id == user.id))
    return [MeetingRow(meeting, count) for meeting, count in db.session.execute(query)]


def awaiting_my_opinion(user: User, limit: int = 20) -> list[AgendaItem]:
    """Items for discussion, still open, with a proposal awaiting this specialist's opinion."""
    return [item for item, _count in decisions.items_awaiting_opinion(user, limit=limit)]


def recent_consensus(user: User, limit: int = 10) -> list[Consensus]:
    """Return the latest signed consensus records the person may read."""
    query = (select(Consensus).join(Consensus.agenda_item).join(AgendaItem.case)
             .options(joinedload(Consensus.agenda_item).joinedload(AgendaItem.case)
                      .joinedload(Case.patient),
                      joinedload(Consensus.agenda_item).joinedload(AgendaItem.meeting))
             .order_by(Consensus.signed_at.desc()).limit(limit))
    if not can_read_all_cases(user):
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
    """Open cases waiting for a place on an agenda (for coordinators to chase), oldest first."""
    query = (select(Case).where(meetings.waiting_for_agenda_clause())
             .options(joinedload(Case.patient), joinedload(Case.referring_clinician),
                      selectinload(Case.references))
             .order_by(Case.created_at).limit(limit))
    return list(db.session.scalars(query))
