"""The item page: the case, agenda context, proposals grouped as alternatives, blinding, queries."""
from __future__ import annotations

from datetime import timedelta

import pytest

from mdt import clock
from mdt.auth.models import Discipline, Role
from mdt.decisions import services
from mdt.decisions.models import Modality, Stance
from mdt.meetings.models import ItemStatus

from .decisions_scene import build_scene


def _page(client, item_id):
    response = client.get(f"/items/{item_id}")
    return response.status_code, response.get_data(as_text=True)


def test_item_page_shows_case_agenda_context_and_proposals(client, make, login_as):
    s = build_scene(make)
    case = s.item.case
    case.egfr_variant, case.systemic_therapy, case.therapy_line = "L858R", "Osimertinib", 1
    case.clinical_summary = "Painful T7 lesion."
    s.item.is_late = True
    make.reference(case, url="https://pacs.example.org/study/1", description="CT thorax")
    p = make.proposal(item=s.item, author=s.radonc, modality=Modality.SBRT, details="24 Gy / 2",
                      rationale="Radioresistant histology")
    login_as(s.coordinator)
    status, html = _page(client, s.item.id)
    assert status == 200
    for text in (case.patient.name, case.patient.hospital_number, "Adenocarcinoma", "L858R",
                 "Osimertinib", "(line 1)", case.question, "Painful T7 lesion.", "CT thorax",
                 "ECOG", "Readiness", "For discussion", "Pending", "Added after the cutoff",
                 "Chair Person", "Stereotactic body radiotherapy (SBRT)", "24 Gy / 2",
                 "Radioresistant histology", f"Proposed by {s.radonc.name} (Radiation oncology)"):
        assert text in html, text
    assert f'id="proposal-{p.id}"' in html


def test_alternatives_are_shown_together_as_choose_one(client, make, login_as):
    s = build_scene(make)
    lone = make.proposal(item=s.item, author=s.radonc, modality=Modality.SBRT)
    deno = make.proposal(item=s.item, author=s.medonc, modality=Modality.DENOSUMAB,
                         alternative_group="Bone-protective agent")
    make.proposal(item=s.item, author=s.radonc, modality=Modality.CEMENTOPLASTY)
    zol = make.proposal(item=s.item, author=s.medonc, modality=Modality.ZOLEDRONIC_ACID,
                        alternative_group="bone-protective  agent")
    groups = services.group_proposals(s.coordinator, services.get_item(s.item.id))
    assert [[v.proposal.id for v in g.proposals] for g in groups][1] == [deno.id, zol.id]
    assert groups[0].label is None and [v.proposal.id for v in groups[0].proposals] == [lone.id]
    login_as(s.coordinator)
    _, html = _page(client, s.item.id)
    assert html.count("Choose one of: Bone-protective agent") == 1
    block = html.split("Choose one of: Bone-protective agent")[1].split("</div>\n  \n  <div")[0]
    assert "Denosumab" in block and "Zoledronic acid" in block


def test_tally_per_proposal_and_per_discipline(make):
    s = build_scene(make, started=True)
    p = make.proposal(item=s.item, author=s.radonc)
    make.opinion(p, s.radonc, Stance.SUPPORT)
    make.opinion(p, s.ortho, Stance.OBJECT, "Unstable spine")
    make.opinion(p, s.medonc, Stance.ABSTAIN)
    other_ro = make.specialist(discipline=Discipline.RADIATION_ONCOLOGY)
    make.opinion(p, other_ro, Stance.OBJECT, "Prefer 8 Gy")
    [group] = services.group_proposals(s.coordinator, services.get_item(s.item.id))
    view = group.proposals[0]
    assert (view.tally.support, view.tally.object, view.tally.abstain) == (1, 2, 1)
    per = {d: (t.support, t.object, t.abstain) for d, t in view.by_discipline}
    assert per == {Discipline.RADIATION_ONCOLOGY: (1, 1, 0), Discipline.ORTHOPAEDICS: (0, 1, 0),
                   Discipline.MEDICAL_ONCOLOGY: (0, 0, 1)}


def test_tally_is_shown_on_the_page(client, make, login_as):
    s = build_scene(make, started=True)
    p = make.proposal(item=s.item, author=s.radonc)
    make.opinion(p, s.radonc, Stance.SUPPORT)
    make.opinion(p, s.ortho, Stance.OBJECT, "Unstable spine")
    login_as(s.referrer)
    _, html = _page(client, s.item.id)
    assert "Support 1" in html and "Object 1" in html and "Abstain 0" in html
    assert "Unstable spine" in html and "By discipline" in html


class TestBlinding:
    def test_specialist_sees_no_opinions_before_giving_their_own(self, client, make, login_as):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.OBJECT, "Secret reason")
        login_as(s.medonc)
        _, html = _page(client, s.item.id)
        assert "Secret reason" not in html and "Object 1" not in html
        assert "Opinions are hidden until you give yours" in html

    def test_specialist_sees_them_after_giving_their_own(self, client, make, login_as):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.OBJECT, "Secret reason")
        login_as(s.medonc)
        client.post(f"/proposals/{p.id}/opinion", data={f"p{p.id}-stance": "support"})
        _, html = _page(client, s.item.id)
        assert "Secret reason" in html and "Object 1" in html and "Support 1" in html

    def test_blinding_is_per_proposal(self, make):
        s = build_scene(make)
        p1 = make.proposal(item=s.item, author=s.radonc)
        p2 = make.proposal(item=s.item, author=s.radonc, modality=Modality.CEMENTOPLASTY)
        make.opinion(p1, s.medonc, Stance.SUPPORT)
        make.opinion(p2, s.ortho, Stance.SUPPORT)
        [g1, g2] = services.group_proposals(s.medonc, services.get_item(s.item.id))
        assert g1.proposals[0].visible is True
        assert g2.proposals[0].visible is False

    def test_everyone_sees_them_once_the_meeting_has_started(self, client, make, login_as):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.OBJECT, "Secret reason")
        for user in (s.medonc, s.referrer):
            login_as(user)
            assert "Secret reason" not in _page(client, s.item.id)[1]
        clock.set_now(s.meeting.starts_at + timedelta(seconds=1))
        for user in (s.medonc, s.referrer):
            login_as(user)
            assert "Secret reason" in _page(client, s.item.id)[1]

    @pytest.mark.parametrize("who", ["chair", "coordinator", "admin"])
    def test_chair_coordinators_and_admins_always_see_them(self, client, make, login_as, who):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.OBJECT, "Secret reason")
        login_as(getattr(s, who))
        assert "Secret reason" in _page(client, s.item.id)[1]

    def test_a_coordinator_who_is_also_a_specialist_is_blinded(self, make):
        s = build_scene(make)
        both = make.user(roles=(Role.COORDINATOR, Role.SPECIALIST),
                         discipline=Discipline.PALLIATIVE_CARE)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.SUPPORT)
        [group] = services.group_proposals(both, services.get_item(s.item.id))
        assert group.proposals[0].visible is False
        make.opinion(p, both, Stance.ABSTAIN)
        [group] = services.group_proposals(both, services.get_item(s.item.id))
        assert group.proposals[0].visible is True

    def test_clinician_does_not_see_them_before_the_meeting(self, make):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.SUPPORT)
        [group] = services.group_proposals(s.referrer, services.get_item(s.item.id))
        assert group.proposals[0].visible is False

    def test_decided_item_reveals_them(self, make):
        s = build_scene(make)
        p = make.proposal(item=s.item, author=s.radonc)
        make.opinion(p, s.ortho, Stance.SUPPORT)
        s.item.status, s.item.status_reason = ItemStatus.WITHDRAWN, "Patient declined"
        from mdt.extensions import db
        db.session.commit()
        [group] = services.group_proposals(s.medonc, services.get_item(s.item.id))
        assert group.proposals[0].visible is True


def test_coordinator_sees_item_controls_specialist_does_not(client, make, login_as, app):
    s = build_scene(make)
    has_status = "meetings.item_status" in app.view_functions
    login_as(s.coordinator)
    html = _page(client, s.item.id)[1]
    assert (f'action="/items/{s.item.id}/status"' in html) is has_status
    login_as(s.radonc)
    assert f'action="/items/{s.item.id}/status"' not in _page(client, s.item.id)[1]


def test_carried_from_is_linked(client, make, login_as):
    s = build_scene(make)
    later = make.meeting(series=s.meeting.series, chair=s.chair,
                         starts_at=s.meeting.starts_at + timedelta(days=7))
    new_item = make.item(meeting=later, case=s.item.case, carried_from_id=s.item.id)
    s.item.carried_to_id = new_item.id
    s.item.status, s.item.status_reason = ItemStatus.DEFERRED, "Awaiting MRI"
    from mdt.extensions import db
    db.session.commit()
    login_as(s.coordinator)
    html = _page(client, s.item.id)[1]
    assert "Carried to" in html and f'href="/items/{new_item.id}"' in html
    assert "Awaiting MRI" in html
    html = _page(client, new_item.id)[1]
    assert "Carried from" in html and f'href="/items/{s.item.id}"' in html


def _populate(make, s, n):
    people = [s.radonc, s.ortho, s.medonc]
    for k in range(n):
        p = make.proposal(item=s.item, author=people[k % 3],
                          alternative_group="Agent" if k % 2 else None)
        for person in people:
            make.opinion(p, person, Stance.OBJECT if person is s.ortho else Stance.SUPPORT,
                         "Reason" if person is s.ortho else None)


@pytest.mark.parametrize("who", ["coordinator", "radonc", "referrer"])
def test_item_page_runs_a_fixed_number_of_queries(client, make, login_as, count_queries, who):
    small, large = build_scene(make, started=True), build_scene(make, started=True)
    _populate(make, small, 1)
    _populate(make, large, 10)
    for s in (small, large):
        make.opinion(make.proposal(item=s.item, author=s.radonc), s.medonc, Stance.ABSTAIN)
    counts = []
    for s in (small, large):
        login_as(getattr(s, who))
        with count_queries() as q:
            assert client.get(f"/items/{s.item.id}").status_code == 200
        counts.append(len(q))
    assert counts[0] == counts[1]


def test_sign_link_only_for_the_chair_once_the_meeting_has_started(client, make, login_as):
    s = build_scene(make)
    login_as(s.chair)
    html = _page(client, s.item.id)[1]
    assert "Record the consensus" not in html and "once the meeting has started" in html
    clock.set_now(s.meeting.starts_at)
    login_as(s.chair)  # signed in again: the session ended after 30 idle minutes
    assert "Record the consensus" in _page(client, s.item.id)[1]
    login_as(s.coordinator)
    assert "Record the consensus" not in _page(client, s.item.id)[1]


def test_item_controls_post_to_the_meetings_endpoints(client, make, login_as):
    s = build_scene(make, started=True)
    later = make.meeting(series=s.meeting.series, chair=s.chair,
                         starts_at=s.meeting.starts_at + timedelta(days=7))
    login_as(s.coordinator)
    html = _page(client, s.item.id)[1]
    assert '<select id="item-status" name="status">' in html
    assert '<label for="item-status-reason">' in html
    response = client.post(f"/items/{s.item.id}/status",
                           data={"status": "deferred", "reason": "Awaiting MRI"})
    assert response.status_code == 302
    html = _page(client, s.item.id)[1]
    assert "Deferred" in html and "Awaiting MRI" in html
    assert f'action="/items/{s.item.id}/carry-over"' in html
    assert 'id="item-status"' not in html  # no longer pending
    assert client.post(f"/items/{s.item.id}/carry-over").status_code == 302
    from mdt.extensions import db
    db.session.expire_all()
    assert s.item.carried_to_id is not None
    assert db.session.get(type(s.item), s.item.carried_to_id).meeting_id == later.id
