"""Who may read an item, see its opinions, edit a proposal or amend a consensus.

Who sees opinions (blinding, so early voices do not anchor later ones):

- the meeting's chair, and coordinators and admins who give no opinions (they
  hold no specialist role), always see every opinion and tally;
- a specialist sees the others' opinions on a proposal (and its tally) once
  they have given their own on it, or once the meeting has started;
- anyone else who may read the case (the referring or responsible clinician)
  sees them once the meeting has started;
- everyone who may read the item sees them once the item is decided.
"""
from __future__ import annotations

from mdt.auth.models import Role, User
from mdt.auth.permissions import can_coordinate
from mdt.cases.services import can_view_case
from mdt.decisions.models import Consensus, Proposal
from mdt.errors import ForbiddenError, ImmutableError, InvalidError
from mdt.meetings.models import AgendaItem
from mdt.meetings.services import has_started, is_chair, is_item_decided

DECIDED_MESSAGE = ("This item has been decided: its proposals and opinions can no longer "
                   "change.")


def can_view_item(user: User, item: AgendaItem) -> bool:
    """Return True if ``user`` may read the item: its chair, or anyone who may read its case."""
    return is_chair(user, item.meeting) or can_view_case(user, item.case)


def can_see_all_opinions(user: User, item: AgendaItem) -> bool:
    """Return True for the chair, and coordinators and admins who give no opinions.

    A coordinator or admin who is also a specialist is blinded as a specialist:
    anchoring is what blinding prevents, and they may give opinions.
    """
    if is_chair(user, item.meeting):
        return True
    return can_coordinate(user) and not can_give_opinions(user)


def can_see_opinions(user: User, proposal: Proposal, item: AgendaItem) -> bool:
    """Return True if ``user`` may see the opinions and tally of ``proposal``."""
    if can_see_all_opinions(user, item) or has_started(item.meeting) or is_item_decided(item):
        return True
    return can_give_opinions(user) and any(
        o.user_id == user.id for o in proposal.opinions)


def can_edit_proposal(user: User, proposal: Proposal) -> bool:
    """Return True for the author or a coordinator: they edit or withdraw a proposal."""
    return proposal.author_id == user.id or user.has_role(Role.COORDINATOR)


def can_amend(user: User, consensus: Consensus) -> bool:
    """Return True for the meeting's chair or a coordinator: they add amendments."""
    return is_chair(user, consensus.agenda_item.meeting) or user.has_role(Role.COORDINATOR)


def can_give_opinions(user: User) -> bool:
    """Only specialists propose treatments and give opinions."""
    return bool(user.is_authenticated and user.has_role(Role.SPECIALIST))


def can_propose(user: User, item: AgendaItem) -> bool:
    """Return True if ``user`` may propose (or give opinions) on ``item``: until it is decided."""
    return can_give_opinions(user) and not is_item_decided(item)


def check_can_propose(user: User, item: AgendaItem) -> None:
    """Raise unless ``user`` may propose on, or give opinions on, ``item`` now."""
    if not can_give_opinions(user):
        raise ForbiddenError("Only specialists propose treatments and give opinions.")
    if is_item_decided(item):
        raise ImmutableError(DECIDED_MESSAGE)


def check_can_edit_proposal(user: User, proposal: Proposal) -> None:
    """Raise unless ``user`` may edit or withdraw ``proposal`` now."""
    if not can_edit_proposal(user, proposal):
        raise ForbiddenError("Only the proposal's author or a coordinator may change it.")
    if is_item_decided(proposal.agenda_item):
        raise ImmutableError(DECIDED_MESSAGE)
    if proposal.is_withdrawn:
        raise InvalidError("This proposal has been withdrawn; it can no longer change.")


def check_can_amend(user: User, consensus: Consensus) -> None:
    """Raise unless ``user`` may add an amendment beneath ``consensus``."""
    if not can_amend(user, consensus):
        raise ForbiddenError("Only the meeting's chair or a coordinator may amend a consensus.")
