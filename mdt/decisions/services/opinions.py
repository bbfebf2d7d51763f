"""Opinions: one per specialist per proposal (support, object with a reason, abstain)."""
from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit.services import changes, record
from mdt.auth.models import Role, User
from mdt.cases.models import Case
from mdt.decisions.models import (
    Consensus,
    Opinion,
    Proposal,
    Stance,
)
from mdt.decisions.services.proposals import clean
from mdt.decisions.services.visibility import check_can_propose
from mdt.errors import (
    ConflictError,
    InvalidError,
)
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, ItemStatus, Meeting, MeetingStatus, Triage


def give_opinion(user: User, proposal: Proposal, *, stance: Stance,
                 comment: str | None) -> Opinion:
    """Record or change a specialist's opinion on a proposal (one per person per proposal)."""
    check_can_propose(user, proposal.agenda_item)
    if proposal.is_withdrawn:
        raise InvalidError("This proposal has been withdrawn; it takes no more opinions.")
    stance, comment = Stance(stance), clean(comment)
    if stance == Stance.OBJECT and not comment:
        raise InvalidError("An objection needs a reason.",
                           fields={"comment": "An objection needs a reason: say why you object."})
    opinion = _find_opinion(proposal.id, user.id)
    if opinion is None:
        opinion = _insert_opinion(proposal, user, stance, comment)
        if opinion is not None:
            record("opinion.given", f"Opinion {stance} on proposal {proposal.id}", obj=opinion,
                   case_id=proposal.agenda_item.case_id, data={"stance": [None, stance]},
                   actor=user)
            return opinion
        # Someone (this person, in another tab) inserted between our read and our
        # insert; the database kept one row, so this becomes a change to it.
        opinion = _find_opinion(proposal.id, user.id)
        if opinion is None:  # inserted and deleted meanwhile: opinions are never deleted
            raise ConflictError("Your opinion changed in another window at the same moment. "
                                "Reload the page and give it again.")
    return _change_opinion(opinion, user, stance, comment)


def _find_opinion(proposal_id: int, user_id: int) -> Opinion | None:
    return db.session.scalars(
        select(Opinion).where(Opinion.proposal_id == proposal_id, Opinion.user_id == user_id)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()


def _insert_opinion(proposal: Proposal, user: User, stance: Stance,
                    comment: str | None) -> Opinion | None:
    """Insert unless the row exists; None when another transaction inserted it first.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key to
    commit and then does nothing, so the unique constraint is never violated
    and the transaction stays usable (no savepoint, which pysqlite commits on
    release when it opens the transaction).
    """
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    now = clock.now()
    table = cast(sa.Table, Opinion.__table__)
    statement = insert(table).values(
        proposal_id=proposal.id, user_id=user.id, discipline=user.discipline, stance=stance,
        comment=comment, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["proposal_id", "user_id"]).returning(
        table.c.id)
    new_id = db.session.execute(statement).scalar_one_or_none()
    return db.session.get(Opinion, new_id) if new_id is not None else None


def _change_opinion(opinion: Opinion, user: User, stance: Stance,
                    comment: str | None) -> Opinion:
    old_stance = opinion.stance
    diff = changes(opinion, {"stance": stance, "comment": comment,
                             "discipline": user.discipline})
    if diff:
        db.session.flush()
        record("opinion.changed", f"Opinion on proposal {opinion.proposal_id} changed from "
               f"{old_stance} to {stance}", obj=opinion, case_id=opinion.proposal.agenda_item
               .case_id, data={"stance": [old_stance, stance],
                               **{k: v for k, v in diff.items() if k != "stance"}}, actor=user)
    return opinion


def awaits_opinion_clause(user: User) -> Any:
    """Return the SQL condition on ``Proposal``: open, not ``user``'s, without their opinion.

    The one definition of "awaiting my opinion": a specialist's home page and
    the opinion-pending e-mail both count proposals that hold it.
    """
    mine = exists().where(Opinion.proposal_id == Proposal.id, Opinion.user_id == user.id)
    return Proposal.is_withdrawn.is_(False) & (Proposal.author_id != user.id) & ~mine


def items_awaiting_opinion(user: User, *, meeting: Meeting | None = None,
                           limit: int | None = None) -> list[tuple[AgendaItem, int]]:
    """Return the open items for discussion awaiting ``user``'s opinion, with how many proposals.

    Items are pending, triaged for discussion, not carried over and not signed,
    on a scheduled meeting (``meeting`` only, if given), in meeting and agenda
    order; one query. Only specialists give opinions: for anyone else, none.
    """
    if not user.has_role(Role.SPECIALIST):
        return []
    waiting = (select(func.count(Proposal.id))
               .where(Proposal.agenda_item_id == AgendaItem.id, awaits_opinion_clause(user))
               .correlate(AgendaItem).scalar_subquery())
    query = (select(AgendaItem, waiting).join(AgendaItem.meeting)
             .where(AgendaItem.status == ItemStatus.PENDING,
                    AgendaItem.triage == Triage.FOR_DISCUSSION,
                    AgendaItem.carried_to_id.is_(None),
                    Meeting.status == MeetingStatus.SCHEDULED,
                    ~exists().where(Consensus.agenda_item_id == AgendaItem.id),
                    waiting > 0)
             .options(joinedload(AgendaItem.meeting).joinedload(Meeting.series),
                      joinedload(AgendaItem.case).joinedload(Case.patient))
             .order_by(Meeting.starts_at, AgendaItem.position).limit(limit))
    if meeting is not None:
        query = query.where(AgendaItem.meeting_id == meeting.id)
    return [(item, count) for item, count in db.session.execute(query)]
