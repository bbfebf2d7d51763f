"""Loading items, proposals and consensus records with what their pages show."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Load, joinedload, selectinload

from mdt.auth.models import User
from mdt.cases.models import Case
from mdt.db import get_or_404
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
    Opinion,
    Proposal,
)
from mdt.decisions.services.visibility import can_view_item
from mdt.errors import (
    NotFoundError,
)
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, Meeting, MeetingCorrection


def _consensus_options(path):
    return (
        path.joinedload(Consensus.responsible_clinician),
        path.selectinload(Consensus.adopted_proposals),
        path.selectinload(Consensus.actions).joinedload(ConsensusAction.owner),
        path.selectinload(Consensus.amendments).joinedload(Amendment.author),
    )


def item_options() -> tuple[Any, ...]:
    """Return the loader options of an item page: case, proposals, opinions, consensus."""
    consensus = selectinload(AgendaItem.consensus)
    return (
        joinedload(AgendaItem.meeting).joinedload(Meeting.series),
        joinedload(AgendaItem.meeting).joinedload(Meeting.chair),
        joinedload(AgendaItem.meeting).selectinload(Meeting.corrections)
        .joinedload(MeetingCorrection.author),
        joinedload(AgendaItem.case).joinedload(Case.patient),
        joinedload(AgendaItem.case).joinedload(Case.referring_clinician),
        joinedload(AgendaItem.case).selectinload(Case.references),
        joinedload(AgendaItem.presenter),
        selectinload(AgendaItem.proposals).joinedload(Proposal.author),
        selectinload(AgendaItem.proposals).selectinload(Proposal.opinions)
        .joinedload(Opinion.user),
        *_consensus_options(consensus),
    )


def get_item(item_id: int) -> AgendaItem:
    """Return an agenda item with its case, proposals, opinions and consensus, or 404."""
    item = db.session.scalars(
        select(AgendaItem).where(AgendaItem.id == item_id).options(*item_options())
    ).unique().one_or_none()
    if item is None:
        raise NotFoundError("No such agenda item.")
    return item


def get_visible_item(user: User, item_id: int) -> AgendaItem:
    """Return the item if ``user`` may read it; 404 otherwise (existence must not leak)."""
    item = get_item(item_id)
    if not can_view_item(user, item):
        raise NotFoundError("No such agenda item.")
    return item


def get_proposal(proposal_id: int) -> Proposal:
    """Return a proposal with its item, meeting and case, or 404."""
    return get_or_404(Proposal, proposal_id, "No such proposal.", options=(
        joinedload(Proposal.agenda_item).joinedload(AgendaItem.meeting),
        joinedload(Proposal.agenda_item).joinedload(AgendaItem.case),
        joinedload(Proposal.agenda_item).selectinload(AgendaItem.consensus),
        joinedload(Proposal.author),
        selectinload(Proposal.opinions),
    ))


def get_consensus(consensus_id: int) -> Consensus:
    """Return a consensus with its item and meeting, or 404."""
    return get_or_404(Consensus, consensus_id, "No such consensus.", options=(
        joinedload(Consensus.agenda_item).joinedload(AgendaItem.meeting),
        joinedload(Consensus.agenda_item).joinedload(AgendaItem.case),
        *_consensus_options(Load(Consensus)),
    ))
