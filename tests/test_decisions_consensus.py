"""The chair's signed consensus: the form, its rules, signing once, status, notifications."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.auth.models import User
from mdt.decisions import services
from mdt.decisions.models import Consensus, Intent, Modality, Outcome, Stance
from mdt.decisions.services import consensus
from mdt.errors import ConflictError, ForbiddenError, InvalidError
from mdt.extensions import db
from mdt.meetings.models import ItemStatus, MeetingStatus
from mdt.notifications import services as notifications

from .decisions_scene import build_scene


def _form(s, **kw):
    data = {"outcome": "agreed", "recommendation": "SBRT 24 Gy in 2 fractions to T7.",
            "intent": "palliative", "responsible_clinician_id": str(s.referrer.id),
            "actions-0-description": "Book SBRT planning CT",
            "actions-0-owner_id": str(s.radonc.id),
            "actions-0-due_on": "2026-12-04", "dissent": "", "confirm": "y"}
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def _consensus():
    return db.session.scalars(select(Consensus)).one_or_none()


@pytest.fixture
def spy(monkeypatch):
    """Record calls of the notification hooks the decisions feature makes."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(notifications, "on_consensus_signed",
                        lambda c: calls.append(("signed", c.id)))
    monkeypatch.setattr(notifications, "on_amendment_added",
                        lambda a: calls.append(("amended", a.id)))
    return calls


def test_chair_signs_through_the_form(client, make, login_as, spy):
    s = build_scene(make, started=True)
    deno = make.proposal(item=s.item, author=s.medonc, modality=Modality.DENOSUMAB,
                         alternative_group="Bone agent")
    sbrt = make.proposal(item=s.item, author=s.radonc)
    make.opinion(sbrt, s.ortho, Stance.OBJECT, "Posterior wall involved")
    login_as(s.chair)
    page = client.get(f"/items/{s.item.id}/consensus").get_data(as_text=True)
    assert "Person" in page and "Quorate" in page
    assert f"{s.ortho.name} (Orthopaedics), on Stereotactic body radiotherapy (SBRT): " \
           "Posterior wall involved</textarea>" in page  # dissent drafted from the objections
    assert "I confirm this record is accurate; once signed it cannot be changed" in page
    assert f'<option selected value="{s.referrer.id}">' in page
    response = client.post(f"/items/{s.item.id}/consensus", data=_form(
        s, adopted=[str(deno.id), str(sbrt.id)], dissent="Ortho: posterior wall"))
    assert response.status_code == 302
    c = _consensus()
    assert (c.outcome, c.intent, c.responsible_clinician_id, c.signed_by_id) == (
        Outcome.AGREED, Intent.PALLIATIVE, s.referrer.id, s.chair.id)
    assert sorted(p.id for p in c.adopted_proposals) == sorted([deno.id, sbrt.id])
    assert [(a.description, a.owner_id, a.due_on) for a in c.actions] == [
        ("Book SBRT planning CT", s.radonc.id, date(2026, 12, 4))]
    assert c.dissent == "Ortho: posterior wall"
    assert c.was_quorate is True and c.non_quorate_reason is None
    assert {a["user_id"] for a in c.attendees_snapshot} == {
        s.chair.id, *[u.id for u in s.team.values()]}
    db.session.expire_all()
    assert s.item.status == ItemStatus.DISCUSSED
    actions = [e.action for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == s.item.case_id))]
    assert "consensus.signed" in actions and "agenda_item.discussed" in actions
    assert spy == [("signed", c.id)]
    html = client.get(f"/items/{s.item.id}").get_data(as_text=True)
    assert "Consensus signed." in html and "SBRT 24 Gy in 2 fractions to T7." in html


def test_only_the_chair_may_sign(client, make, login_as):
    s = build_scene(make, started=True)
    for user in (s.coordinator, s.radonc, s.admin, s.referrer):
        login_as(user)
        assert client.get(f"/items/{s.item.id}/consensus").status_code == 403
        assert client.post(f"/items/{s.item.id}/consensus", data=_form(s)).status_code == 403
    login_as(s.other_clinician)
    assert client.get(f"/items/{s.item.id}/consensus").status_code == 404
    with pytest.raises(ForbiddenError):
        services.sign_consensus(s.coordinator, s.item,
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS, reason="x"))
    assert _consensus() is None


def test_agreed_needs_a_recommendation_and_a_clinician(client, make, login_as):
    s = build_scene(make, started=True)
    login_as(s.chair)
    response = client.post(f"/items/{s.item.id}/consensus", data=_form(
        s, recommendation=" ", responsible_clinician_id="", dissent="Typed dissent"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="recommendation-err">An agreed outcome needs the recommendation.' in html
    assert 'id="responsible_clinician_id-err">Name the clinician responsible' in html
    assert "Typed dissent</textarea>" in html and "Book SBRT planning CT" in html
    assert _consensus() is None


@pytest.mark.parametrize("outcome", ["deferred", "no_consensus"])
def test_deferred_and_no_consensus_need_a_reason(client, make, login_as, outcome):
    s = build_scene(make, started=True)
    login_as(s.chair)
    response = client.post(f"/items/{s.item.id}/consensus",
                           data=_form(s, outcome=outcome, recommendation=""))
    assert 'id="reason-err">Say why the outcome is' in response.get_data(as_text=True)
    assert _consensus() is None


def test_deferred_sets_the_item_deferred_with_the_reason(make):
    s = build_scene(make, started=True)
    services.sign_consensus(s.chair, s.item,
                            services.ConsensusInput(outcome=Outcome.DEFERRED,
                                                    reason="Awaiting MRI"))
    db.session.commit()
    db.session.expire_all()
    assert (s.item.status, s.item.status_reason) == (ItemStatus.DEFERRED, "Awaiting MRI")
    assert s.item.consensus.outcome == Outcome.DEFERRED


def test_no_consensus_sets_the_item_discussed(make):
    s = build_scene(make, started=True)
    services.sign_consensus(s.chair, s.item,
                            services.ConsensusInput(outcome=Outcome.NO_CONSENSUS, reason="Split"))
    db.session.commit()
    db.session.expire_all()
    assert s.item.status == ItemStatus.DISCUSSED


def test_signing_an_item_a_coordinator_already_marked_discussed(make):
    s = build_scene(make, started=True)
    s.item.status = ItemStatus.DISCUSSED
    db.session.commit()
    services.sign_consensus(s.chair, s.item,
                            services.ConsensusInput(outcome=Outcome.DEFERRED, reason="Need biopsy"))
    db.session.commit()
    db.session.expire_all()
    assert (s.item.status, s.item.status_reason) == (ItemStatus.DEFERRED, "Need biopsy")


def test_at_most_one_proposal_per_alternative_group(client, make, login_as):
    s = build_scene(make, started=True)
    deno = make.proposal(item=s.item, author=s.medonc, modality=Modality.DENOSUMAB,
                         alternative_group="Bone agent")
    zol = make.proposal(item=s.item, author=s.medonc, modality=Modality.ZOLEDRONIC_ACID,
                        alternative_group="bone  AGENT")
    login_as(s.chair)
    response = client.post(f"/items/{s.item.id}/consensus",
                           data=_form(s, adopted=[str(deno.id), str(zol.id)]))
    assert "Choose one of the alternatives in" in response.get_data(as_text=True)
    assert _consensus() is None
    assert client.post(f"/items/{s.item.id}/consensus",
                       data=_form(s, adopted=[str(zol.id)])).status_code == 302
    assert [p.id for p in _consensus().adopted_proposals] == [zol.id]


def test_adopted_proposals_must_be_open_proposals_of_the_item(make):
    s = build_scene(make, started=True)
    gone = make.proposal(item=s.item, author=s.radonc, is_withdrawn=True)
    elsewhere = make.proposal(author=s.radonc)
    for ids in ([gone.id], [elsewhere.id]):
        with pytest.raises(InvalidError) as exc:
            services.sign_consensus(s.chair, s.item,
                                    services.ConsensusInput(outcome=Outcome.AGREED,
                                                            recommendation="x",
                                                            responsible_clinician_id=s.referrer.id,
                                                            adopted_ids=ids))
        assert "adopted" in exc.value.fields
    kept = make.proposal(item=s.item, author=s.radonc)
    with pytest.raises(InvalidError) as exc:
        services.sign_consensus(s.chair, s.item,
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS, reason="x",
                                                        adopted_ids=[kept.id]))
    assert exc.value.fields["adopted"] == "Only an agreed recommendation adopts proposals."


def test_non_quorate_signing_needs_a_reason_which_is_kept(client, make, login_as):
    s = build_scene(make, started=True, present=False)
    make.attendance(s.meeting, s.chair)
    make.attendance(s.meeting, s.radonc)
    login_as(s.chair)
    page = client.get(f"/items/{s.item.id}/consensus").get_data(as_text=True)
    assert "Not quorate" in page and "Orthopaedics" in page
    response = client.post(f"/items/{s.item.id}/consensus", data=_form(s))
    html = response.get_data(as_text=True)
    assert 'id="non_quorate_reason-err">The meeting is not quorate' in html
    assert _consensus() is None
    client.post(f"/items/{s.item.id}/consensus",
                data=_form(s, non_quorate_reason="Urgent: cord compression risk"))
    c = _consensus()
    assert (c.was_quorate, c.non_quorate_reason) == (False, "Urgent: cord compression risk")
    assert [a["user_id"] for a in c.attendees_snapshot] == sorted(
        [s.chair.id, s.radonc.id], key=lambda i: {s.chair.id: s.chair.name,
                                                   s.radonc.id: s.radonc.name}[i])


def test_the_confirmation_is_required(client, make, login_as):
    s = build_scene(make, started=True)
    login_as(s.chair)
    response = client.post(f"/items/{s.item.id}/consensus", data=_form(s, confirm=None))
    assert "Confirm the record before signing." in response.get_data(as_text=True)
    assert _consensus() is None


def test_an_action_needs_a_description(client, make, login_as):
    s = build_scene(make, started=True)
    login_as(s.chair)
    response = client.post(f"/items/{s.item.id}/consensus", data=_form(
        s, **{"actions-1-owner_id": str(s.ortho.id)}))
    assert "Action 2: say what is to be done." in response.get_data(as_text=True)
    assert _consensus() is None


def test_a_second_signing_gets_a_clear_message(client, make, login_as):
    s = build_scene(make, started=True)
    login_as(s.chair)
    assert client.post(f"/items/{s.item.id}/consensus", data=_form(s)).status_code == 302
    response = client.post(f"/items/{s.item.id}/consensus",
                           data=_form(s, recommendation="Something else"))
    assert response.status_code == 409
    assert "already been signed" in response.get_data(as_text=True)
    assert client.get(f"/items/{s.item.id}/consensus").status_code == 409
    db.session.expire_all()
    assert _consensus().recommendation == "SBRT 24 Gy in 2 fractions to T7."


def test_two_signings_racing_leave_one_consensus(make, app, monkeypatch):
    """The other request signed after our checks: the unique constraint gives a conflict."""
    s = build_scene(make, started=True)
    mine = services.get_item(s.item.id)
    services.check_can_sign(s.chair, mine)
    chair_id = s.chair.id
    with app.app_context():
        services.sign_consensus(db.session.get(User, chair_id), services.get_item(s.item.id),
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS,
                                                        reason="First"))
        db.session.commit()
    monkeypatch.setattr(consensus, "check_can_sign", lambda *a: None)  # passed, as in the race
    with pytest.raises(ConflictError, match="just been signed"):
        services.sign_consensus(s.chair, mine,
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS,
                                                        reason="Second"))
    db.session.rollback()
    assert _consensus().reason == "First"


def test_no_signing_before_the_meeting_or_when_cancelled(make):
    s = build_scene(make)
    with pytest.raises(InvalidError, match="not started"):
        services.sign_consensus(s.chair, s.item,
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS, reason="x"))
    s2 = build_scene(make, started=True)
    s2.meeting.status = MeetingStatus.CANCELLED
    db.session.commit()
    with pytest.raises(InvalidError, match="cancelled"):
        services.sign_consensus(s2.chair, s2.item,
                                services.ConsensusInput(outcome=Outcome.NO_CONSENSUS, reason="x"))
