"""Proposals: attach, edit with optimistic locking, withdraw, closed once decided, audited."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.decisions import services
from mdt.decisions.models import Modality, Proposal
from mdt.errors import ConflictError, ForbiddenError, ImmutableError
from mdt.extensions import db
from mdt.meetings.models import ItemStatus

from .decisions_scene import build_scene


def _audit(action):
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _form(**kw):
    data = {"modality": "denosumab", "details": "120 mg SC every 4 weeks",
            "rationale": "Bone-protective", "alternative_group": "Bone-protective agent"}
    data.update(kw)
    return data


def test_specialist_attaches_a_proposal_through_the_form(client, make, login_as):
    s = build_scene(make)
    login_as(s.medonc)
    form = client.get(f"/items/{s.item.id}/proposals/new").get_data(as_text=True)
    assert 'name="modality"' in form and "Zoledronic acid (bisphosphonate)" in form
    assert '<label for="alternative_group">' in form
    response = client.post(f"/items/{s.item.id}/proposals/new", data=_form())
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/items/{s.item.id}")
    proposal = db.session.scalars(select(Proposal)).one()
    assert (proposal.modality, proposal.author_id, proposal.alternative_group) == (
        Modality.DENOSUMAB, s.medonc.id, "Bone-protective agent")
    [entry] = _audit("proposal.created")
    assert entry.case_id == s.item.case_id and entry.actor_id == s.medonc.id
    assert "Proposal added." in client.get(f"/items/{s.item.id}").get_data(as_text=True)


def test_modality_must_come_from_the_list_and_input_is_kept(client, make, login_as):
    s = build_scene(make)
    login_as(s.medonc)
    response = client.post(f"/items/{s.item.id}/proposals/new",
                           data=_form(modality="homeopathy", details="Kept text"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Not a valid choice" in html and "Kept text" in html
    assert db.session.scalars(select(Proposal)).all() == []


def test_only_specialists_propose(client, make, login_as):
    s = build_scene(make)
    for user in (s.coordinator, s.referrer, s.admin):
        login_as(user)
        assert client.post(f"/items/{s.item.id}/proposals/new", data=_form()).status_code == 403
    with pytest.raises(ForbiddenError):
        services.create_proposal(s.coordinator, s.item, modality=Modality.SBRT, details=None,
                                 rationale=None)


def test_author_edits_and_the_change_is_audited(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.radonc)
    page = client.get(f"/proposals/{p.id}/edit").get_data(as_text=True)
    assert 'name="version" type="hidden" value="1"' in page
    response = client.post(f"/proposals/{p.id}/edit", data=_form(
        modality="sbrt", details="27 Gy in 3 fractions", alternative_group="", version="1"))
    assert response.status_code == 302
    db.session.expire_all()
    assert (p.details, p.version) == ("27 Gy in 3 fractions", 2)
    [entry] = _audit("proposal.changed")
    assert entry.data["details"] == ["24 Gy in 2 fractions", "27 Gy in 3 fractions"]
    assert entry.case_id == s.item.case_id


def test_a_coordinator_may_edit_another_specialist_may_not(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.ortho)
    assert client.get(f"/proposals/{p.id}/edit").status_code == 403
    assert client.post(f"/proposals/{p.id}/edit", data=_form(version="1")).status_code == 403
    assert client.post(f"/proposals/{p.id}/withdraw").status_code == 403
    login_as(s.coordinator)
    assert client.post(f"/proposals/{p.id}/edit",
                       data=_form(modality="sbrt", version="1")).status_code == 302


def test_stale_edit_shows_a_conflict_with_current_values_and_saves_nothing(client, make,
                                                                           login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc, details="Original")
    login_as(s.radonc)
    client.get(f"/proposals/{p.id}/edit")  # opened at version 1
    login_as(s.coordinator, on=(other := client.application.test_client()))
    assert other.post(f"/proposals/{p.id}/edit", data=_form(
        modality="sbrt", details="Coordinator's text", version="1")).status_code == 302
    response = client.post(f"/proposals/{p.id}/edit", data=_form(
        modality="sbrt", details="My late text", version="1"))
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else changed this proposal after you opened it" in html
    assert "Coordinator&#39;s text" in html  # the current version is shown
    assert "My late text" in html  # what was typed is kept
    assert 'name="version" type="hidden" value="2"' in html
    db.session.expire_all()
    assert p.details == "Coordinator's text"
    assert len(_audit("proposal.changed")) == 1


def test_service_refuses_a_stale_version(make):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    services.update_proposal(s.radonc, p, version=1, modality=Modality.SBRT, details="v2",
                             rationale=None, alternative_group=None)
    db.session.commit()
    with pytest.raises(ConflictError):
        services.update_proposal(s.radonc, p, version=1, modality=Modality.SBRT, details="v3",
                                 rationale=None, alternative_group=None)


def test_concurrent_write_caught_by_the_version_column(make, app):
    """Both read version 1; the second flush finds the row changed and is refused."""
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    mine = services.get_proposal(p.id)
    with app.app_context():  # another request, its own session, commits first
        theirs = services.get_proposal(p.id)
        services.update_proposal(s.radonc, theirs, version=1, modality=Modality.SBRT,
                                 details="theirs", rationale=None, alternative_group=None)
        db.session.commit()
    with pytest.raises(ConflictError):
        services.update_proposal(s.radonc, mine, version=1, modality=Modality.SBRT,
                                 details="mine", rationale=None, alternative_group=None)
    db.session.rollback()
    assert services.get_proposal(p.id).details == "theirs"


def test_withdraw_keeps_the_proposal_on_record(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.radonc)
    assert client.get(f"/proposals/{p.id}/withdraw").status_code == 405
    assert client.post(f"/proposals/{p.id}/withdraw").status_code == 302
    db.session.expire_all()
    assert p.is_withdrawn is True
    html = client.get(f"/items/{s.item.id}").get_data(as_text=True)
    assert "Withdrawn" in html and "Stereotactic body radiotherapy" in html
    [entry] = _audit("proposal.withdrawn")
    assert entry.case_id == s.item.case_id
    assert client.post(f"/proposals/{p.id}/opinion",
                       data={f"p{p.id}-stance": "support"}).status_code == 400


@pytest.mark.parametrize("status", [ItemStatus.DISCUSSED, ItemStatus.WITHDRAWN,
                                    ItemStatus.DEFERRED])
def test_no_proposal_changes_once_the_item_is_decided(client, make, login_as, status):
    s = build_scene(make, started=True)
    p = make.proposal(item=s.item, author=s.radonc)
    s.item.status, s.item.status_reason = status, "Reason"
    db.session.commit()
    login_as(s.radonc)
    assert client.get(f"/items/{s.item.id}/proposals/new").status_code == 409
    assert client.post(f"/items/{s.item.id}/proposals/new", data=_form()).status_code == 409
    assert client.post(f"/proposals/{p.id}/edit", data=_form(version="1")).status_code == 409
    assert client.post(f"/proposals/{p.id}/withdraw").status_code == 409
    db.session.expire_all()
    assert (p.version, p.is_withdrawn, len(s.item.proposals)) == (1, False, 1)
    with pytest.raises(ImmutableError):
        services.create_proposal(s.radonc, s.item, modality=Modality.SBRT, details=None,
                                 rationale=None)
    with pytest.raises(ImmutableError):
        services.withdraw_proposal(s.radonc, p)


def test_proposal_of_an_invisible_case_is_404_for_a_clinician(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.other_clinician)
    assert client.get(f"/items/{s.item.id}").status_code == 404
    assert client.post(f"/proposals/{p.id}/opinion", data={}).status_code == 403


def test_create_proposal_service_cleans_its_input(make):
    s = build_scene(make)
    p = services.create_proposal(s.radonc, s.item, modality="denosumab", details="  ",
                                 rationale=" Bone health ", alternative_group="  Bone   agent ")
    db.session.commit()
    assert (p.modality, p.details, p.rationale, p.alternative_group, p.version) == (
        Modality.DENOSUMAB, None, "Bone health", "Bone agent", 1)
    [entry] = _audit("proposal.created")
    assert (entry.object_id, entry.actor_id, entry.data["modality"]) == (
        p.id, s.radonc.id, "denosumab")


def test_unchanged_edit_writes_nothing(make):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    services.update_proposal(s.radonc, p, version=1, modality=p.modality, details=p.details,
                             rationale=p.rationale, alternative_group=None)
    db.session.commit()
    assert p.version == 1 and _audit("proposal.changed") == []
