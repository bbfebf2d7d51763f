"""A signed consensus never changes: every way to change it is refused; amendments go beneath."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, insert, select, update

from mdt.audit.models import AuditEntry
from mdt.decisions import services
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
    Modality,
    Outcome,
    consensus_proposals,
)
from mdt.errors import ImmutableError
from mdt.extensions import db
from mdt.notifications import services as notifications

from .decisions_scene import sign_agreed


@pytest.fixture
def signed(make):
    """A scene whose item has a signed, agreed consensus with one action and one adopted
    proposal."""
    return sign_agreed(make)


def _fresh(s) -> Consensus:
    db.session.expire_all()
    return db.session.get(Consensus, s.consensus_id)


def _unchanged(s) -> None:
    db.session.rollback()
    c = _fresh(s)
    assert c.recommendation == "SBRT to T7"
    assert [p.id for p in c.adopted_proposals] == [s.adopted.id]
    assert [(a.description, a.due_on) for a in c.actions] == [("Book planning CT",
                                                               date(2026, 12, 4))]


@pytest.mark.parametrize("change", [
    lambda c, s: setattr(c, "recommendation", "Surgery instead"),
    lambda c, s: setattr(c, "outcome", Outcome.NO_CONSENSUS),
    lambda c, s: setattr(c, "was_quorate", False),
    lambda c, s: setattr(c, "signed_at", c.signed_at.replace(year=2020)),
    lambda c, s: setattr(c, "responsible_clinician_id", s.other_clinician.id),
    lambda c, s: c.adopted_proposals.append(s.other),
    lambda c, s: c.adopted_proposals.clear(),
    lambda c, s: setattr(c.actions[0], "description", "Nothing"),
    lambda c, s: setattr(c.actions[0], "due_on", date(2027, 1, 1)),
    lambda c, s: c.actions.append(ConsensusAction(description="Extra")),
    lambda c, s: db.session.add(ConsensusAction(consensus_id=c.id, description="Sneaked in")),
    lambda c, s: db.session.delete(c.actions[0]),
    lambda c, s: db.session.delete(c),
], ids=["recommendation", "outcome", "quorum", "signed_at", "clinician", "adopt-more",
        "adopt-none", "action-text", "action-due", "action-append", "action-add", "action-delete",
        "delete"])
def test_orm_changes_are_refused_at_flush(signed, change):
    change(_fresh(signed), signed)
    with pytest.raises(ImmutableError):
        db.session.commit()
    _unchanged(signed)


@pytest.mark.parametrize("statement", [
    lambda s: update(Consensus).where(Consensus.id == s.consensus_id).values(recommendation="x"),
    lambda s: update(ConsensusAction).values(description="x"),
    lambda s: delete(ConsensusAction),
    lambda s: delete(Consensus.__table__),
    lambda s: delete(consensus_proposals),
    lambda s: insert(consensus_proposals).values(consensus_id=s.consensus_id,
                                                 proposal_id=s.other.id),
    lambda s: update(Amendment).values(reason="x"),
], ids=["update-consensus", "update-actions", "delete-actions", "delete-consensus-table",
        "delete-links", "insert-link", "update-amendments"])
def test_bulk_statements_through_the_session_are_refused(signed, statement):
    with pytest.raises(ImmutableError):
        db.session.execute(statement(signed))
    _unchanged(signed)


def test_amendments_themselves_cannot_change(signed):
    c = _fresh(signed)
    amendment = services.add_amendment(signed.chair, c, reason="Typo", correction="T8 not T7")
    db.session.commit()
    for change in (lambda a: setattr(a, "correction", "Other"), db.session.delete):
        a = db.session.get(Amendment, amendment.id)
        change(a)
        with pytest.raises(ImmutableError):
            db.session.commit()
        db.session.rollback()
    assert db.session.get(Amendment, amendment.id).correction == "T8 not T7"


def test_there_is_no_route_to_edit_or_delete_a_consensus(client, signed, login_as):
    login_as(signed.chair)
    cid, iid = signed.consensus_id, signed.item.id
    assert client.get(f"/consensus/{cid}/edit").status_code == 404
    assert client.post(f"/consensus/{cid}/delete").status_code == 404
    assert client.post(f"/consensus/{cid}").status_code in (404, 405)
    response = client.post(f"/items/{iid}/consensus", data={
        "outcome": "no_consensus", "reason": "Changed my mind", "confirm": "y"})
    assert response.status_code == 409
    _unchanged(signed)


def test_proposals_and_opinions_of_the_decided_item_are_closed(client, signed, login_as):
    login_as(signed.radonc)
    p = signed.adopted
    assert client.post(f"/proposals/{p.id}/edit", data={
        "modality": "surgery", "version": "1"}).status_code == 409
    assert client.post(f"/proposals/{p.id}/withdraw").status_code == 409
    assert client.post(f"/proposals/{p.id}/opinion",
                       data={f"p{p.id}-stance": "abstain"}).status_code == 409
    assert client.post(f"/items/{signed.item.id}/proposals/new",
                       data={"modality": "sbrt"}).status_code == 409
    db.session.expire_all()
    assert (p.modality, p.is_withdrawn, len(p.opinions)) == (Modality.SBRT, False, 1)


def test_the_item_page_shows_no_sign_link_once_signed(client, signed, login_as):
    login_as(signed.chair)
    html = client.get(f"/items/{signed.item.id}").get_data(as_text=True)
    assert "Record the consensus" not in html and "Add an amendment" in html


class TestAmendments:
    def test_chair_adds_an_amendment_shown_beneath_with_who_and_when(self, client, signed,
                                                                      login_as, monkeypatch):
        calls = []
        monkeypatch.setattr(notifications, "on_amendment_added",
                            lambda a: calls.append(a.id))
        login_as(signed.chair)
        page = client.get(f"/consensus/{signed.consensus_id}/amend").get_data(as_text=True)
        assert "SBRT to T7" in page and "Why the record is corrected" in page
        response = client.post(f"/consensus/{signed.consensus_id}/amend", data={
            "reason": "Level misread", "correction": "The lesion is at T8."})
        assert response.status_code == 302
        amendment = db.session.scalars(select(Amendment)).one()
        assert (amendment.author_id, amendment.reason) == (signed.chair.id, "Level misread")
        assert calls == [amendment.id]
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "consensus.amended")).one()
        assert entry.case_id == signed.item.case_id
        html = client.get(f"/items/{signed.item.id}").get_data(as_text=True)
        consensus_at, amendment_at = html.index("SBRT to T7"), html.index("The lesion is at T8.")
        assert consensus_at < amendment_at and "Amendment 1 — Chair Person" in html
        _unchanged(signed)

    def test_a_coordinator_may_amend(self, client, signed, login_as):
        login_as(signed.coordinator)
        assert client.post(f"/consensus/{signed.consensus_id}/amend", data={
            "reason": "r", "correction": "c"}).status_code == 302

    def test_others_may_not(self, client, signed, login_as):
        for user in (signed.radonc, signed.referrer, signed.admin):
            login_as(user)
            assert client.post(f"/consensus/{signed.consensus_id}/amend", data={
                "reason": "r", "correction": "c"}).status_code == 403
        login_as(signed.other_clinician)
        assert client.get(f"/consensus/{signed.consensus_id}/amend").status_code == 404
        assert db.session.scalars(select(Amendment)).all() == []

    def test_why_and_what_are_required(self, client, signed, login_as):
        login_as(signed.chair)
        response = client.post(f"/consensus/{signed.consensus_id}/amend",
                               data={"reason": "", "correction": "Kept correction"})
        html = response.get_data(as_text=True)
        assert 'id="reason-err">Say why the record is corrected.' in html
        assert "Kept correction" in html
        assert db.session.scalars(select(Amendment)).all() == []
