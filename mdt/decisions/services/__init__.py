"""Proposals, opinions, the signed consensus and its amendments: the domain operations.

One module per use case; callers import the package
(``from mdt.decisions import services as decisions``). Services take the
acting user as their first argument, flush, and leave the commit to the
caller. A signed consensus, its actions and adopted proposals never change;
amendments are appended beneath it. The services refuse such changes, and
``mdt.decisions.guards`` refuses them for any other path through the ORM.
"""
from mdt.decisions.guards import SIGNED_MESSAGE
from mdt.decisions.services.consensus import (
    ActionInput,
    ConsensusInput,
    action_owners,
    add_amendment,
    can_sign,
    check_can_sign,
    dissent_from_objections,
    responsible_clinicians,
    sign_consensus,
)
from mdt.decisions.services.item_page import (
    ItemPage,
    ProposalGroup,
    ProposalView,
    Tally,
    group_proposals,
    item_page,
    tally,
)
from mdt.decisions.services.loading import (
    get_consensus,
    get_item,
    get_proposal,
    get_visible_item,
)
from mdt.decisions.services.opinions import (
    awaits_opinion_clause,
    give_opinion,
    items_awaiting_opinion,
)
from mdt.decisions.services.proposals import (
    CONFLICT_MESSAGE,
    create_proposal,
    update_proposal,
    withdraw_proposal,
)
from mdt.decisions.services.report import CaseReport, ReportEntry, case_report
from mdt.decisions.services.visibility import (
    DECIDED_MESSAGE,
    can_amend,
    can_edit_proposal,
    can_give_opinions,
    can_propose,
    can_see_all_opinions,
    can_see_opinions,
    can_view_item,
    check_can_amend,
    check_can_edit_proposal,
    check_can_propose,
)

__all__ = [
    "CONFLICT_MESSAGE", "DECIDED_MESSAGE", "SIGNED_MESSAGE", "ActionInput", "CaseReport",
    "ConsensusInput", "ItemPage", "ProposalGroup", "ProposalView", "ReportEntry", "Tally",
    "action_owners", "add_amendment", "awaits_opinion_clause", "can_amend", "can_edit_proposal",
    "can_give_opinions", "can_propose", "can_see_all_opinions", "can_see_opinions", "can_sign",
    "can_view_item", "case_report", "check_can_amend", "check_can_edit_proposal",
    "check_can_propose", "check_can_sign", "create_proposal", "dissent_from_objections",
    "get_consensus", "get_item", "get_proposal", "get_visible_item", "give_opinion",
    "group_proposals", "item_page", "items_awaiting_opinion", "responsible_clinicians",
    "sign_consensus", "tally", "update_proposal", "withdraw_proposal",
]
