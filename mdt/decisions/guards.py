"""The guard: a signed consensus, its actions, adopted proposals and amendments never change.

The decisions services refuse such changes themselves; these session
listeners refuse them for every other code path that goes through the ORM
(a stray ``setattr``, a bulk ``UPDATE``, a script). Amendments may only be
appended. They are registered when ``mdt.decisions`` is imported, so any
code that can load a consensus is guarded. What bypasses the ORM (textual
SQL, a DB-API cursor) meets the database's own triggers (``mdt/append_only.py``).
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
    Proposal,
    consensus_proposals,
)
from mdt.errors import ImmutableError

SIGNED_MESSAGE = ("A signed consensus cannot be changed. To correct it, add an amendment "
                  "beneath it.")
ADOPTED_MESSAGE = ("This proposal was adopted in a signed consensus and cannot be changed. "
                   "To correct the record, add an amendment beneath the consensus.")


#: The signed records, and their tables (with the link table of adopted proposals).
_GUARDED = (Consensus, ConsensusAction, Amendment)
_GUARDED_TABLES = {"consensuses", "consensus_actions", "amendments", "consensus_proposals"}
#: Attributes that may change on a persistent guarded row: appending an
#: amendment touches the consensus's ``amendments`` collection.
_APPEND_ONLY = {"amendments"}


def _changed_attributes(obj: Any) -> list[str]:
    state = sa.inspect(obj)
    return [attr.key for attr in state.attrs
            if attr.key not in _APPEND_ONLY and attr.history.has_changes()]


def _is_adopted(session: Session, proposal: Proposal) -> bool:
    """Return True if a signed consensus adopted ``proposal``."""
    return session.execute(sa.select(consensus_proposals.c.proposal_id).where(
        consensus_proposals.c.proposal_id == proposal.id).limit(1)).first() is not None


def _joins_signed_consensus(session: Session, action: ConsensusAction) -> bool:
    parent = action.consensus
    if parent is not None:
        return parent not in session.new
    return action.consensus_id is not None


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_signed_records(session: Session, _context: UOWTransaction,
                                      _instances: Any) -> None:
    """Refuse any update or delete of a signed consensus, its actions or amendments."""
    for obj in session.deleted:
        if isinstance(obj, _GUARDED):
            raise ImmutableError(SIGNED_MESSAGE)
    for obj in session.dirty:
        if isinstance(obj, _GUARDED) and _changed_attributes(obj):
            raise ImmutableError(SIGNED_MESSAGE)
        if isinstance(obj, Proposal) and _changed_attributes(obj) and _is_adopted(session, obj):
            raise ImmutableError(ADOPTED_MESSAGE)
    for obj in session.new:
        if isinstance(obj, ConsensusAction) and _joins_signed_consensus(session, obj):
            raise ImmutableError(SIGNED_MESSAGE)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes_to_signed_records(state: ORMExecuteState) -> None:
    """Refuse UPDATE/DELETE statements (and late INSERTs of links) on signed records."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if state.is_insert and name not in {"consensus_proposals", "consensus_actions"}:
        return
    if name in _GUARDED_TABLES:
        raise ImmutableError(SIGNED_MESSAGE)
