"""The database itself refuses to change signed records and audit entries (issue 7, item 11).

Raw SQL through the session (``text()``, which the ORM guard cannot see) and
a raw DB-API cursor, on SQLite and PostgreSQL: every UPDATE and DELETE of a
signed consensus, its actions, its adopted proposals (the links and the
proposal rows), its amendments and of audit entries fails with the trigger's
message, and the row is unchanged. What the application does stays allowed.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mdt import append_only
from mdt.decisions import services
from mdt.decisions.models import Proposal
from mdt.errors import ImmutableError
from mdt.extensions import db

from .decisions_scene import sign_agreed

AMENDMENTS = "amendments are append-only"
AUDIT = "audit entries are append-only"
ADOPTED = "a proposal adopted in a signed consensus cannot change"
SIGNED = append_only.SIGNED


@pytest.fixture
def signed(make):
    """A signed, agreed consensus with an action, an adopted proposal and an amendment."""
    s = sign_agreed(make)
    amendment = services.add_amendment(s.chair, s.consensus, reason="Typo",
                                       correction="T8, not T7")
    db.session.commit()
    s.amendment_id = amendment.id
    return s


def _snapshot(s) -> dict[str, list]:
    """Everything the statements below try to change, read afresh."""
    db.session.rollback()
    rows = {
        "consensuses": "SELECT id, recommendation, outcome FROM consensuses",
        "consensus_actions": "SELECT id, description, due_on FROM consensus_actions",
        "consensus_proposals": "SELECT consensus_id, proposal_id FROM consensus_proposals",
        "proposals": "SELECT id, details, modality FROM proposals ORDER BY id",
        "amendments": "SELECT id, reason, correction FROM amendments",
        "audit_entries": "SELECT id, action, summary FROM audit_entries ORDER BY id",
    }
    return {table: [tuple(r) for r in db.session.execute(sa.text(sql))]
            for table, sql in rows.items()}


STATEMENTS = [
    ("UPDATE consensuses SET recommendation = 'Surgery instead'", SIGNED),
    ("UPDATE consensuses SET outcome = 'no_consensus', reason = 'x'", SIGNED),
    ("DELETE FROM consensuses", SIGNED),
    ("UPDATE consensus_actions SET description = 'Nothing'", SIGNED),
    ("DELETE FROM consensus_actions", SIGNED),
    ("UPDATE consensus_proposals SET proposal_id = {other}", SIGNED),
    ("DELETE FROM consensus_proposals", SIGNED),
    ("UPDATE proposals SET details = '8 Gy single fraction' WHERE id = {adopted}", ADOPTED),
    ("UPDATE proposals SET modality = 'surgery'", ADOPTED),
    ("UPDATE amendments SET correction = 'Never mind'", AMENDMENTS),
    ("DELETE FROM amendments", AMENDMENTS),
    ("UPDATE audit_entries SET summary = 'nothing happened'", AUDIT),
    ("UPDATE audit_entries SET actor_id = NULL", AUDIT),
    ("DELETE FROM audit_entries", AUDIT),
]
IDS = ["consensus-update", "consensus-outcome", "consensus-delete", "action-update",
       "action-delete", "link-update", "link-delete", "adopted-details", "adopted-modality",
       "amendment-update", "amendment-delete", "audit-update", "audit-actor", "audit-delete"]


@pytest.mark.parametrize(("statement", "message"), STATEMENTS, ids=IDS)
def test_raw_sql_through_the_session_is_refused(signed, statement, message):
    before = _snapshot(signed)
    sql = statement.format(other=signed.other.id, adopted=signed.adopted.id)
    with pytest.raises(IntegrityError, match=message):
        db.session.execute(sa.text(sql))
    assert _snapshot(signed) == before


@pytest.mark.parametrize(("statement", "message"), STATEMENTS, ids=IDS)
def test_a_raw_dbapi_cursor_is_refused(signed, statement, message):
    before = _snapshot(signed)
    sql = statement.format(other=signed.other.id, adopted=signed.adopted.id)
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        with pytest.raises(db.engine.dialect.loaded_dbapi.IntegrityError, match=message):
            cursor.execute(sql)
        connection.rollback()
    finally:
        connection.close()
    assert _snapshot(signed) == before


def test_what_the_application_does_is_still_allowed(signed, make):
    before = _snapshot(signed)
    # Proposals that were not adopted may still change (the item is decided, so the
    # services refuse, but the database only guards the adopted ones).
    db.session.execute(sa.text("UPDATE proposals SET details = 'edited' WHERE id = :id"),
                       {"id": signed.other.id})
    # Appending is allowed: another amendment (with its audit entry), another signing.
    services.add_amendment(signed.chair, signed.consensus, reason="Second look",
                           correction="Also T9")
    second = sign_agreed(make)
    db.session.commit()
    after = _snapshot(signed)
    assert len(after["amendments"]) == len(before["amendments"]) + 1
    assert len(after["consensuses"]) == 2 and len(after["consensus_actions"]) == 2
    assert len(after["audit_entries"]) > len(before["audit_entries"])
    assert (signed.other.id, "edited", "cementoplasty") in after["proposals"]
    assert second.consensus.id != signed.consensus.id


def test_the_orm_guard_now_covers_adopted_proposals_too(signed):
    proposal = db.session.get(Proposal, signed.adopted.id)
    proposal.details = "8 Gy single fraction"
    with pytest.raises(ImmutableError, match="adopted"):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(Proposal, signed.adopted.id).details == "24 Gy in 2 fractions"
    other = db.session.get(Proposal, signed.other.id)
    other.rationale = "Not adopted: the ORM lets it change"
    db.session.commit()
