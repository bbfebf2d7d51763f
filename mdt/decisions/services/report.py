"""The consensus report of a case: every signed consensus and what the referrer acts on."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from mdt.auth.models import Discipline, User
from mdt.cases.models import Case
from mdt.cases.services import can_view_case
from mdt.decisions.models import (
    Consensus,
)
from mdt.decisions.services.item_page import ProposalGroup, group_proposals
from mdt.decisions.services.loading import item_options
from mdt.errors import (
    NotFoundError,
)
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, Meeting


@dataclass
class ReportEntry:
    item: AgendaItem
    consensus: Consensus
    options: list[ProposalGroup]
    quorum_missing: list[str]


@dataclass
class CaseReport:
    case: Case
    entries: list[ReportEntry]
    other_items: list[AgendaItem]


def case_report(user: User, case_id: int) -> CaseReport:
    """Gather every signed consensus of a case and what the referrer needs to act on it."""
    case = db.session.scalars(select(Case).where(Case.id == case_id).options(
        joinedload(Case.patient), joinedload(Case.referring_clinician),
        selectinload(Case.references))).unique().one_or_none()
    if case is None or not can_view_case(user, case):
        raise NotFoundError("No such case.")
    items = db.session.scalars(
        select(AgendaItem).join(AgendaItem.meeting).where(AgendaItem.case_id == case.id)
        .order_by(Meeting.starts_at, AgendaItem.id).options(*item_options())).unique().all()
    entries, others = [], []
    for item in items:
        if item.consensus is None:
            others.append(item)
            continue
        snapshot = {a["discipline"] for a in item.consensus.attendees_snapshot}
        missing = [Discipline(d).label for d in item.meeting.series.core_disciplines
                   if d not in snapshot]
        entries.append(ReportEntry(item, item.consensus, group_proposals(user, item), missing))
    return CaseReport(case, entries, others)
