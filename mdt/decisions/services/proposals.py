"""Treatment proposals: a specialist attaches, edits or withdraws one."""
from __future__ import annotations

from mdt.audit.services import changes, record
from mdt.auth.models import User
from mdt.db import flush_or_conflict
from mdt.decisions.models import (
    Modality,
    Proposal,
)
from mdt.decisions.services.visibility import check_can_edit_proposal, check_can_propose
from mdt.errors import (
    ConflictError,
)
from mdt.extensions import db
from mdt.meetings.models import AgendaItem

CONFLICT_MESSAGE = ("Someone else changed this proposal after you opened it. Nothing of yours "
                    "was saved; the current version is shown below. Re-apply your changes "
                    "if they still make sense.")


def clean(text: str | None) -> str | None:
    """Return ``text`` stripped, or None if nothing is left."""
    text = (text or "").strip()
    return text or None


def _group_label(label: str | None) -> str | None:
    """Normalise spacing so "Bone  agent " and "Bone agent" are one group."""
    return " ".join((label or "").split())[:40] or None


def group_key(label: str | None) -> str:
    """Labels that differ only in case or spacing name the same group."""
    return " ".join((label or "").split()).casefold()


def create_proposal(user: User, item: AgendaItem, *, modality: Modality, details: str | None,
                    rationale: str | None, alternative_group: str | None = None) -> Proposal:
    """Attach a specialist's treatment proposal to an agenda item."""
    check_can_propose(user, item)
    proposal = Proposal(agenda_item=item, author=user, modality=Modality(modality),
                        details=clean(details), rationale=clean(rationale),
                        alternative_group=_group_label(alternative_group))
    db.session.add(proposal)
    db.session.flush()
    record("proposal.created", f"Proposal {proposal.id} ({proposal.modality.label}) added to "
           f"agenda item {item.id}", obj=proposal, case_id=item.case_id,
           data={"modality": proposal.modality,
                 "alternative_group": proposal.alternative_group}, actor=user)
    return proposal


def update_proposal(user: User, proposal: Proposal, *, version: int, modality: Modality,
                    details: str | None, rationale: str | None,
                    alternative_group: str | None) -> Proposal:
    """Edit a proposal, refusing an edit based on a version someone else has since changed."""
    check_can_edit_proposal(user, proposal)
    if version != proposal.version:
        raise ConflictError(CONFLICT_MESSAGE)
    diff = changes(proposal, {
        "modality": Modality(modality), "details": clean(details),
        "rationale": clean(rationale), "alternative_group": _group_label(alternative_group)})
    if not diff:
        return proposal
    flush_or_conflict(CONFLICT_MESSAGE)
    record("proposal.changed", f"Proposal {proposal.id} changed", obj=proposal,
           case_id=proposal.agenda_item.case_id, data=diff, actor=user)
    return proposal


def withdraw_proposal(user: User, proposal: Proposal) -> Proposal:
    """Withdraw a proposal: it stays on record, struck through, and takes no more opinions."""
    check_can_edit_proposal(user, proposal)
    proposal.is_withdrawn = True
    flush_or_conflict(CONFLICT_MESSAGE)
    record("proposal.withdrawn", f"Proposal {proposal.id} withdrawn", obj=proposal,
           case_id=proposal.agenda_item.case_id, data={"is_withdrawn": [False, True]}, actor=user)
    return proposal
