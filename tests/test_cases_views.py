"""Case pages through the test client: refer, read, edit, references, list and search."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from mdt.audit.models import AuditEntry
from mdt.cases.models import Case, CaseReference, CaseStatus, MarkerStatus, Patient
from mdt.extensions import db
from mdt.meetings.models import ItemStatus

REFERRAL = {
    "hospital_number": "H7001", "patient_name": "Zhang Min", "date_of_birth": "1961-04-09",
    "sex": "female", "primary_site": "Lung", "histology": "Adenocarcinoma", "stage": "IVB",
    "egfr_status": "positive", "egfr_variant": "exon 19 deletion", "alk_status": "negative",
    "ros1_status": "negative", "kras_status": "not_tested", "kras_variant": "",
    "pdl1_tps": "5", "ecog": "1", "systemic_therapy": "Osimertinib", "therapy_line": "1",
    "question": "SBRT to T7, or cementoplasty first?", "clinical_summary": "Pain since May.",
}


def sign_consensus(make, item, responsible=None):
    """A signed consensus row for ``item`` (built directly, like the factories)."""
    from mdt import clock
    from mdt.decisions.models import Consensus, Outcome

    consensus = Consensus(agenda_item_id=item.id, outcome=Outcome.AGREED, recommendation="SBRT",
                          responsible_clinician_id=responsible.id if responsible else None,
                          attendees_snapshot=[], was_quorate=True,
                          signed_by_id=make.specialist().id, signed_by_name="Signer",
                          signed_by_discipline="radiology", signed_at=clock.now())
    db.session.add(consensus)
    db.session.commit()
    return consensus


def page(response) -> str:
    return response.get_data(as_text=True)


def only_case() -> Case:
    db.session.expire_all()
    return db.session.scalars(select(Case)).one()


def test_clinician_refers_a_new_patient(client, make, login_as):
    clinician = login_as_user = make.clinician()
    login_as(login_as_user)
    assert client.get("/cases/new").status_code == 200
    response = client.post("/cases/new", data={**REFERRAL, "submit": "Refer case"})
    case = only_case()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cases/{case.id}")
    assert case.referring_clinician_id == clinician.id
    assert case.egfr_status == MarkerStatus.POSITIVE and case.pdl1_tps == 5 and case.ecog == 1
    assert case.patient.hospital_number == "H7001"
    detail = page(client.get(f"/cases/{case.id}"))
    assert f"Case {case.id} referred." in detail
    assert "Zhang Min" in detail and "exon 19 deletion" in detail and "Osimertinib" in detail
    entries = list(db.session.scalars(select(AuditEntry.action)
                                      .where(AuditEntry.case_id == case.id)))
    assert entries == ["patient.created", "case.created"]


def test_errors_sit_next_to_fields_and_input_is_kept(client, make, login_as, frozen_clock):
    login_as(make.clinician())
    data = {**REFERRAL, "question": "", "pdl1_tps": "150", "date_of_birth": "2999-01-01",
            "submit": "Refer case"}
    response = client.post("/cases/new", data=data)
    html = page(response)
    assert response.status_code == 200
    assert 'id="question-err"' in html and "Say what you are asking the MDT." in html
    assert 'id="pdl1_tps-err"' in html
    assert 'value="Zhang Min"' in html and "Pain since May." in html
    assert db.session.scalar(select(func.count(Case.id))) == 0
    # The form is valid now except the future date of birth, which the service refuses.
    response = client.post("/cases/new", data={**REFERRAL, "date_of_birth": "2999-01-01",
                                               "submit": "Refer case"})
    assert 'id="date_of_birth-err"' in page(response)
    assert "cannot be in the future" in page(response)
    assert db.session.scalar(select(func.count(Patient.id))) == 0


def test_existing_patient_is_shown_for_confirmation_before_use(client, make, login_as):
    patient = make.patient(hospital_number="H7002", name="Chen Jie", date_of_birth=date(1955, 2, 3))
    login_as(make.specialist())  # an MDT member: may read every patient
    looked_up = page(client.post("/cases/new", data={"hospital_number": "h7002",
                                                     "lookup": "Look up hospital number"}))
    assert ("Registered patient:" in looked_up and "Chen Jie" in looked_up
            and "03 Feb 1955" in looked_up)
    blank = {**REFERRAL, "hospital_number": "H7002", "patient_name": "", "date_of_birth": "",
             "sex": "", "submit": "Refer case"}
    first = client.post("/cases/new", data=blank)  # not yet confirmed: shown, not saved
    assert first.status_code == 200 and "Check that this is the right person" in page(first)
    assert f'name="confirmed_patient_id" type="hidden" value="{patient.id}"' in page(first)
    assert db.session.scalar(select(func.count(Case.id))) == 0
    second = client.post("/cases/new", data={**blank, "confirmed_patient_id": str(patient.id)})
    assert second.status_code == 302
    assert only_case().patient_id == patient.id
    assert db.session.scalar(select(func.count(Patient.id))) == 1


def test_contradicting_patient_details_are_refused(client, make, login_as):
    make.patient(hospital_number="H7003", name="Chen Jie", date_of_birth=date(1955, 2, 3))
    login_as(make.specialist())  # may read the patient, so is told which detail differs
    response = client.post("/cases/new", data={**REFERRAL, "hospital_number": "H7003",
                                               "patient_name": "Zhang Min", "submit": "Refer case"})
    html = page(response)
    assert response.status_code == 200
    assert "belongs to a patient with another name" in html
    assert "belongs to a patient with another date of birth" in html
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_coordinator_refers_on_behalf_of_a_clinician(client, make, login_as):
    clinician = make.clinician(name="Dr Referrer")
    make.admin(name="Not A Clinician")
    login_as(make.coordinator())
    form = page(client.get("/cases/new"))
    assert "Dr Referrer" in form and "Not A Clinician" not in form
    missing = client.post("/cases/new", data={**REFERRAL, "submit": "Refer case"})
    assert 'id="referrer_id-err"' in page(missing)
    response = client.post("/cases/new", data={**REFERRAL, "referrer_id": str(clinician.id),
                                               "submit": "Refer case"})
    assert response.status_code == 302
    assert only_case().referring_clinician_id == clinician.id


def test_clinician_cannot_name_another_referrer(client, make, login_as):
    me, other = make.clinician(), make.clinician()
    login_as(me)
    assert "Referring clinician" not in page(client.get("/cases/new"))
    client.post("/cases/new", data={**REFERRAL, "referrer_id": str(other.id),
                                    "submit": "Refer case"})
    assert only_case().referring_clinician_id == me.id


def test_case_page_shows_readiness_references_and_items(client, make, login_as):
    case = make.case(ready=False, ecog=2)
    make.reference(case, kind="pathology", accession_number="PATH-9", description="Biopsy T7")
    item = make.item(case=case, status=ItemStatus.DEFERRED, status_reason="Awaiting MRI")
    login_as(case.referring_clinician)
    html = page(client.get(f"/cases/{case.id}"))
    assert "PATH-9" in html and "Biopsy T7" in html
    assert 'class="failed"' in html and "At least one imaging reference" in html
    assert "2 — Ambulatory and capable of all self-care" in html
    assert "Deferred: Awaiting MRI" in html
    assert item.meeting.time_zone and "Not on any meeting" not in html


def _case_with(make, n: int, **kw) -> Case:
    case = make.case(**kw)
    for i in range(n):
        make.reference(case, accession_number=f"R{i}")
        sign_consensus(make, make.item(case=case))
    return case


def test_case_page_runs_a_fixed_number_of_queries(client, make, login_as, count_queries):
    referrer = make.clinician()
    urls = [f"/cases/{_case_with(make, n, referrer=referrer).id}" for n in (1, 8)]
    for user in (make.coordinator(), referrer):  # MDT member; clinician (visibility query)
        login_as(user)
        counts = []
        for url in urls:
            with count_queries() as q:
                assert client.get(url).status_code == 200
            counts.append(len(q))
        assert counts[0] == counts[1], counts


@pytest.mark.parametrize("role", ["specialist", "clinician"])
def test_case_list_runs_a_fixed_number_of_queries(client, make, login_as, count_queries, role):
    user = getattr(make, role)()
    referrer = user if role == "clinician" else None
    login_as(user)
    make.case(referrer=referrer)
    with count_queries() as small:
        client.get("/cases")
    for _ in range(8):
        _case_with(make, 2, referrer=referrer)
    with count_queries() as large:
        html = page(client.get("/cases"))
    assert html.count('href="/cases/') - html.count('href="/cases/new"') == 9
    assert len(small) == len(large)


def test_edit_saves_and_audits_a_diff(client, make, login_as):
    case = make.case(ecog=1, stage="IVA")
    login_as(case.referring_clinician)
    form = page(client.get(f"/cases/{case.id}/edit"))
    assert 'name="version" type="hidden" value="1"' in form
    data = {**REFERRAL, "version": "1", "ecog": "3", "stage": "IVB", "question": case.question}
    response = client.post(f"/cases/{case.id}/edit", data=data)
    assert response.status_code == 302
    case = only_case()
    assert (case.ecog, case.stage, case.version) == (3, "IVB", 2)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "case.updated")).one()
    assert entry.data["ecog"] == [1, 3] and entry.data["stage"] == ["IVA", "IVB"]


def test_stale_edit_shows_a_conflict_and_overwrites_nothing(client, make, login_as):
    case = make.case(ecog=1)
    login_as(case.referring_clinician)
    mine = {**REFERRAL, "version": "1", "question": case.question}
    # Someone else saves first.
    assert client.post(f"/cases/{case.id}/edit", data={**mine, "ecog": "2"}).status_code == 302
    response = client.post(f"/cases/{case.id}/edit", data={**mine, "ecog": "4"})
    html = page(response)
    assert response.status_code == 200
    assert "Someone else changed this case since you opened it" in html
    assert "ECOG performance status" in html and 'name="version" type="hidden" value="2"' in html
    assert '<option selected value="4">' in html  # the user's input is kept
    assert only_case().ecog == 2
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "case.updated")) == 1
    # Submitting again, now based on version 2, is a deliberate overwrite.
    assert client.post(f"/cases/{case.id}/edit", data={**mine, "version": "2", "ecog": "4"}
                       ).status_code == 302
    assert only_case().ecog == 4


def test_add_and_retract_a_reference(client, make, login_as):
    case = make.case(ready=False, ecog=1)
    login_as(case.referring_clinician)
    bad = client.post(f"/cases/{case.id}/references", data={
        "kind": "imaging", "accession_number": "RAD-77", "performed_on": "2026-11-01",
        "description": "CT chest", "url": "ftp://pacs/1"})
    assert 'id="url-err"' in page(bad) and 'value="RAD-77"' in page(bad)
    assert db.session.scalar(select(func.count(CaseReference.id))) == 0
    good = client.post(f"/cases/{case.id}/references", data={
        "kind": "imaging", "accession_number": "RAD-77", "performed_on": "2026-11-01",
        "description": "CT chest", "url": "https://pacs.example.org/RAD-77"})
    assert good.status_code == 302
    ref = db.session.scalars(select(CaseReference)).one()
    html = page(client.get(f"/cases/{case.id}"))
    assert 'href="https://pacs.example.org/RAD-77"' in html and 'class="passed"' in html
    assert client.post(f"/cases/{case.id}/references/{ref.id}/retract", data={"reason": ""}
                       ).status_code == 302
    db.session.expire_all()
    assert db.session.get(CaseReference, ref.id).retracted_at is None
    client.post(f"/cases/{case.id}/references/{ref.id}/retract", data={"reason": "Wrong study"})
    db.session.expire_all()
    assert db.session.get(CaseReference, ref.id).retraction_reason == "Wrong study"
    html = page(client.get(f"/cases/{case.id}"))
    assert 'class="retracted"' in html and "Wrong study" in html
    actions = list(db.session.scalars(select(AuditEntry.action)
                                      .where(AuditEntry.case_id == case.id)))
    assert actions == ["reference.added", "reference.retracted"]


def test_list_shows_clinicians_only_their_cases(client, make, login_as):
    me = make.clinician()
    mine, theirs = make.case(referrer=me), make.case()
    make.case(referrer=me, status=CaseStatus.CLOSED)
    login_as(me)
    html = page(client.get("/cases"))
    assert f"/cases/{mine.id}\"" in html and f"/cases/{theirs.id}\"" not in html
    assert html.count('href="/cases/') - html.count('href="/cases/new') == 1
    assert page(client.get("/cases?closed=1")).count("tag\">Closed") == 1


def test_search_by_hospital_number_is_posted_never_in_the_url(client, make, login_as):
    target, other = make.case(), make.case()
    login_as(make.coordinator())
    html = page(client.get("/cases"))
    assert 'method="post" action="/cases"' in html
    response = client.post("/cases",
                           data={"hospital_number": target.patient.hospital_number.lower()})
    html = page(response)
    assert f"/cases/{target.id}\"" in html and f"/cases/{other.id}\"" not in html
    assert target.patient.hospital_number not in response.request.url


def test_case_page_links_to_items_report_and_agenda_by_role(client, make, login_as):
    case = make.case()
    item = make.item(case=case)
    add_link = f'href="/cases/{case.id}/agenda"'
    login_as(case.referring_clinician)
    html = page(client.get(f"/cases/{case.id}"))
    assert f'href="/items/{item.id}"' in html
    assert f'href="/cases/{case.id}/report"' not in html  # nothing signed yet
    sign_consensus(make, item)
    html = page(client.get(f"/cases/{case.id}"))
    assert f'href="/cases/{case.id}/report"' in html and "Consensus signed" in html
    assert add_link in html and f'href="/cases/{case.id}/edit"' in html
    login_as(make.admin())
    html = page(client.get(f"/cases/{case.id}"))
    assert add_link in html and f'href="/cases/{case.id}/edit"' not in html


def test_lookup_without_a_number_or_of_an_unknown_number(client, make, login_as):
    login_as(make.clinician())
    empty = page(client.post("/cases/new", data={"hospital_number": "", "lookup": "Look up"}))
    assert 'id="hospital_number-err"' in empty
    unknown = page(client.post("/cases/new", data={"hospital_number": "H404", "patient_name": "New",
                                                   "lookup": "Look up"}))
    assert "No patient has this hospital number yet" in unknown and 'value="New"' in unknown
    assert db.session.scalar(select(func.count(Patient.id))) == 0


def test_case_list_is_paginated_and_keeps_its_filter(client, make, login_as, monkeypatch):
    from mdt.cases.services import reading

    monkeypatch.setattr(reading, "CASES_PER_PAGE", 2)
    cases = [make.case() for _ in range(5)]
    login_as(make.coordinator())
    first = page(client.get("/cases"))
    assert "Page 1 of 3 (5 in all)" in first
    assert f">Case {cases[-1].id}<" in first and f">Case {cases[0].id}<" not in first
    last = page(client.get("/cases?closed=1&page=3"))
    assert f">Case {cases[0].id}<" in last and "Page 3 of 3" in last
    assert 'href="/cases?closed=1&amp;page=2"' in last
    assert "No cases to show." in page(client.get("/cases?page=9"))
