"""The item page: proposals grouped as alternatives, with tallies the viewer may see."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from mdt.auth.models import Discipline, User
from mdt.cases.services import Readiness, readiness
from mdt.decisions.models import (
    Opinion,
    Proposal,
    Stance,
)
from mdt.decisions.services.loading import get_visible_item
from mdt.decisions.services.proposals import group_key
from mdt.decisions.services.visibility import can_see_opinions
from mdt.extensions import db
from mdt.meetings.models import AgendaItem
from mdt.meetings.services import has_started, is_item_decided


@dataclass
class Tally:
    support: int = 0
    object: int = 0
    abstain: int = 0

    def add(self, stance: Stance) -> None:
        setattr(self, stance.value, getattr(self, stance.value) + 1)

    @property
    def total(self) -> int:
        return self.support + self.object + self.abstain


@dataclass
class ProposalView:
    proposal: Proposal
    visible: bool
    tally: Tally
    by_discipline: list[tuple[Discipline, Tally]]
    own_opinion: Opinion | None


@dataclass
class ProposalGroup:
    #: The alternative group's label; None for a proposal that stands alone.
    label: str | None
    proposals: list[ProposalView] = field(default_factory=list)


@dataclass
class ItemPage:
    item: AgendaItem
    readiness: Readiness
    groups: list[ProposalGroup]
    decided: bool
    started: bool
    carried_from: AgendaItem | None
    carried_to: AgendaItem | None


def tally(opinions: list[Opinion]) -> tuple[Tally, list[tuple[Discipline, Tally]]]:
    """Count stances overall and per discipline (disciplines in their listed order)."""
    total, per = Tally(), defaultdict[Discipline, Tally](Tally)
    for opinion in opinions:
        total.add(opinion.stance)
        per[opinion.discipline].add(opinion.stance)
    return total, [(d, per[d]) for d in Discipline if d in per]


def group_proposals(user: User, item: AgendaItem) -> list[ProposalGroup]:
    """Group the item's proposals: alternatives sharing a label together, in first-seen order."""
    groups: dict[str, ProposalGroup] = {}
    for proposal in item.proposals:
        key = group_key(proposal.alternative_group) or f"#{proposal.id}"
        group = groups.setdefault(key, ProposalGroup(proposal.alternative_group))
        overall, per_discipline = tally(proposal.opinions)
        own = next((o for o in proposal.opinions if o.user_id == user.id), None)
        group.proposals.append(ProposalView(proposal, can_see_opinions(user, proposal, item),
                                            overall, per_discipline, own))
    return list(groups.values())


def _carried_items(item: AgendaItem) -> dict[int, AgendaItem]:
    ids = [i for i in (item.carried_from_id, item.carried_to_id) if i]
    if not ids:
        return {}
    rows = db.session.scalars(select(AgendaItem).where(AgendaItem.id.in_(ids))
                              .options(joinedload(AgendaItem.meeting)))
    return {row.id: row for row in rows}


def item_page(user: User, item_id: int) -> ItemPage:
    """Gather everything the item page shows, in a fixed number of queries."""
    item = get_visible_item(user, item_id)
    carried = _carried_items(item)
    return ItemPage(
        item=item, readiness=readiness(item.case), groups=group_proposals(user, item),
        decided=is_item_decided(item), started=has_started(item.meeting),
        carried_from=carried.get(item.carried_from_id or 0),
        carried_to=carried.get(item.carried_to_id or 0),
    )
