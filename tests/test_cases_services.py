"""Case services: refer, patient matching, edit with optimistic locking, references, lists."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.cases import services
from mdt.cases.models import (
    Case,
    CaseReference,
    CaseStatus,
    MarkerStatus,
    Patient,
    ReferenceKind,
    Sex,
)
from mdt.cases.services import patients, referral
from mdt.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from mdt.extensions import db

from .factories import utc
from .test_cases_views import sign_consensus

NEW_PATIENT = services.PatientInput(hospital_number=" h0001 ", name="Li  Wei",
                                    date_of_birth=date(1958, 3, 2), sex=Sex.MALE)
VALUES = {"question": "SBRT or surgery for the T7 lesion?", "ecog": 1, "pdl1_tps": 60,
          "egfr_status": "positive", "egfr_variant": "L858R", "histology": "Adenocarcinoma"}


def actions(case_id=None):
    query = select(AuditEntry.action).order_by(AuditEntry.id)
    if case_id is not None:
        query = query.where(AuditEntry.case_id == case_id)
    return list(db.session.scalars(query))


def test_refer_registers_a_new_patient_and_audits_both(make):
    clinician = make.clinician()
    case = services.create_case(patient=NEW_PATIENT, values=VALUES, actor=clinician)
    db.session.commit()
    assert case.patient.hospital_number == "H0001"
    assert case.patient.name == "Li Wei"
    assert case.referring_clinician_id == clinician.id
    assert case.primary_site == "Lung"
    assert case.egfr_status == MarkerStatus.POSITIVE and case.alk_status == MarkerStatus.NOT_TESTED
    assert actions(case.id) == ["patient.created", "case.created"]
    created = db.session.scalars(select(AuditEntry)
                                 .where(AuditEntry.action == "case.created")).one()
    assert created.actor_id == clinician.id
    assert created.data["pdl1_tps"] == 60 and created.data["patient_id"] == case.patient_id
    assert "Li Wei" not in created.summary and "Li Wei" not in str(created.data)


def test_refer_reuses_an_existing_patient_when_details_match_or_are_blank(make):
    patient = make.patient(hospital_number="H0002", name="Wang Fang",
                           date_of_birth=date(1970, 1, 1))
    clinician = make.clinician()
    first = services.create_case(patient=services.PatientInput(
        "h0002", name="wang  fang", date_of_birth=date(1970, 1, 1)), values=VALUES, actor=clinician)
    second = services.create_case(patient=services.PatientInput("H0002"), values=VALUES,
                                  actor=clinician)
    db.session.commit()
    assert first.patient_id == second.patient_id == patient.id
    assert db.session.scalar(select(sa.func.count(Patient.id))) == 1
    assert "patient.created" not in actions()


@pytest.mark.parametrize("typed, field", [
    ({"name": "Someone Else"}, "patient_name"),
    ({"date_of_birth": date(1971, 1, 1)}, "date_of_birth"),
    ({"sex": Sex.MALE}, "sex"),
])
def test_refer_refuses_details_that_contradict_the_stored_patient(make, typed, field):
    make.patient(hospital_number="H0003", name="Wang Fang", date_of_birth=date(1970, 1, 1),
                 sex=Sex.FEMALE)
    with pytest.raises(InvalidError) as err:  # a specialist may read the patient: told which
        services.create_case(patient=services.PatientInput("H0003", **typed), values=VALUES,
                             actor=make.specialist())
    assert field in err.value.fields
    db.session.rollback()
    assert db.session.scalar(select(sa.func.count(Case.id))) == 0


def test_new_patient_needs_name_dob_sex_and_no_future_birth(make, frozen_clock):
    frozen_clock(utc(2026, 11, 27, 3, 0))
    with pytest.raises(InvalidError) as err:
        services.create_case(patient=services.PatientInput("H0004"), values=VALUES,
                             actor=make.clinician())
    assert set(err.value.fields) == {"patient_name", "date_of_birth", "sex"}
    with pytest.raises(InvalidError) as err:
        services.create_case(patient=services.PatientInput(
            "H0004", "A Person", date(2026, 11, 28), Sex.FEMALE), values=VALUES,
            actor=make.clinician())
    assert "future" in err.value.fields["date_of_birth"]


def test_refer_validates_case_fields(make):
    bad = {"question": "  ", "ecog": 5, "pdl1_tps": 101, "therapy_line": 0,
           "kras_status": "negative", "kras_variant": "G12C"}
    with pytest.raises(InvalidError) as err:
        services.create_case(patient=NEW_PATIENT, values=bad, actor=make.clinician())
    assert set(err.value.fields) == {"question", "ecog", "pdl1_tps", "therapy_line", "kras_variant"}


def test_only_a_coordinator_refers_on_behalf_of_a_clinician(make):
    clinician, specialist, coordinator = make.clinician(), make.specialist(), make.coordinator()
    case = services.create_case(patient=NEW_PATIENT, values=VALUES, actor=coordinator,
                                referrer=clinician)
    assert case.referring_clinician_id == clinician.id
    with pytest.raises(ForbiddenError):
        services.create_case(patient=NEW_PATIENT, values=VALUES, actor=specialist,
                             referrer=clinician)
    with pytest.raises(InvalidError) as err:  # a coordinator is not a clinician
        services.create_case(patient=NEW_PATIENT, values=VALUES, actor=coordinator)
    assert "referrer_id" in err.value.fields
    with pytest.raises(ForbiddenError):
        services.create_case(patient=NEW_PATIENT, values=VALUES, actor=make.admin())


def test_update_records_a_diff_and_bumps_the_version(make):
    case = make.case(ecog=1, stage="IVA")
    specialist = make.specialist()
    diff = services.update_case(case, expected_version=1, actor=specialist,
                                values={"ecog": 2, "stage": "IVA", "question": case.question})
    db.session.commit()
    assert diff == {"ecog": [1, 2]}
    assert case.version == 2
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "case.updated")).one()
    assert entry.data == {"ecog": [1, 2]} and entry.actor_id == specialist.id
    assert entry.case_id == case.id


def test_update_with_no_change_writes_nothing(make):
    case = make.case()
    assert services.update_case(case, expected_version=1, actor=case.referring_clinician,
                                values={"question": case.question}) == {}
    db.session.commit()
    assert case.version == 1 and actions() == []


def test_stale_version_is_refused_and_nothing_is_saved(make):
    case = make.case(ecog=1)
    referrer = case.referring_clinician
    services.update_case(case, expected_version=1, actor=referrer, values={"ecog": 2})
    db.session.commit()
    with pytest.raises(ConflictError):
        services.update_case(case, expected_version=1, actor=referrer, values={"ecog": 3})
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Case, case.id).ecog == 2
    assert actions() == ["case.updated"]


def test_concurrent_write_between_read_and_flush_is_a_conflict_and_rolls_back_the_audit(make):
    case = make.case(ecog=1)
    referrer = case.referring_clinician
    # Another request saves the case after this one read it (version 1 → 2).
    with db.engine.begin() as conn:
        conn.execute(sa.update(Case).where(Case.id == case.id).values(stage="IIIA", version=2))
    with pytest.raises(ConflictError):
        services.update_case(case, expected_version=1, actor=referrer, values={"ecog": 4})
    db.session.rollback()
    db.session.expire_all()
    saved = db.session.get(Case, case.id)
    assert (saved.ecog, saved.stage, saved.version) == (1, "IIIA", 2)
    assert actions() == []


def test_failed_insert_leaves_neither_case_nor_audit_entry(make, monkeypatch):
    """Two people register the same new patient at once: the loser saves nothing at all."""
    make.patient(hospital_number="H0005")
    monkeypatch.setattr(patients, "find_patient", lambda number: None)  # lost the race
    with pytest.raises(ConflictError):
        services.create_case(patient=services.PatientInput(
            "H0005", "A Person", date(1960, 1, 1), Sex.FEMALE), values=VALUES,
            actor=make.clinician())
    db.session.rollback()
    assert db.session.scalar(select(sa.func.count(Case.id))) == 0
    assert db.session.scalar(select(sa.func.count(AuditEntry.id))) == 0


def test_database_check_constraint_failure_rolls_back_the_change_and_its_entry(make, monkeypatch):
    case = make.case(ecog=1)
    monkeypatch.setattr(referral, "clean_case_values",
                        lambda values, case=None: values)  # skip our checks
    with pytest.raises(ConflictError):  # ck_cases_ecog_range refuses it in the database
        services.update_case(case, expected_version=1, actor=case.referring_clinician,
                             values={"ecog": 9})
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Case, case.id).ecog == 1
    assert actions() == []


def test_clinician_who_did_not_refer_cannot_edit(make):
    case = make.case()
    with pytest.raises(ForbiddenError):
        services.update_case(case, expected_version=1, actor=make.clinician(),
                             values={"ecog": 2})
    with pytest.raises(ForbiddenError):
        services.update_case(case, expected_version=1, actor=make.admin(), values={"ecog": 2})


def test_only_a_coordinator_changes_the_referrer(make):
    case = make.case()
    other = make.clinician()
    with pytest.raises(ForbiddenError):
        services.update_case(case, expected_version=1, actor=make.specialist(), values={},
                             referrer=other)
    db.session.rollback()
    diff = services.update_case(case, expected_version=1, actor=make.coordinator(), values={},
                                referrer=other)
    db.session.commit()
    assert diff["referring_clinician_id"][1] == other.id
    assert case.referring_clinician_id == other.id


def test_add_reference_validates_and_audits(make, frozen_clock):
    frozen_clock(utc(2026, 11, 27, 3, 0))
    case = make.case(ready=False)
    actor = case.referring_clinician
    with pytest.raises(InvalidError) as err:
        services.add_reference(case, kind=ReferenceKind.IMAGING, accession_number=" ",
                               performed_on=date(2026, 11, 28), description="",
                               url="javascript:alert(1)", actor=actor)
    assert set(err.value.fields) == {"accession_number", "performed_on", "description", "url"}
    ref = services.add_reference(case, kind=ReferenceKind.IMAGING, accession_number="RAD-1",
                                 performed_on=date(2026, 11, 20), description="MRI spine",
                                 url="https://pacs.example.org/study/1", actor=actor)
    db.session.commit()
    assert ref.id and ref.case_id == case.id
    entry = db.session.scalars(select(AuditEntry)
                               .where(AuditEntry.action == "reference.added")).one()
    assert entry.case_id == case.id and entry.data["accession_number"] == "RAD-1"


def test_retracted_imaging_no_longer_counts_for_readiness(make):
    case = make.case(ready=False, ecog=0)
    ref = make.reference(case)
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert services.readiness(case).is_ready
    with pytest.raises(InvalidError):
        services.retract_reference(case, ref.id, reason=" ", actor=case.referring_clinician)
    services.retract_reference(case, ref.id, reason="Wrong patient's study",
                               actor=case.referring_clinician)
    db.session.commit()
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert db.session.get(CaseReference, ref.id).retraction_reason == "Wrong patient's study"
    assert services.readiness(case).missing == ["At least one imaging reference"]
    assert actions(case.id) == ["reference.retracted"]
    with pytest.raises(InvalidError):
        services.retract_reference(case, ref.id, reason="again", actor=case.referring_clinician)


def test_retract_a_reference_of_another_case_is_not_found(make):
    case, other = make.case(), make.case()
    with pytest.raises(NotFoundError):
        services.retract_reference(case, other.references[0].id, reason="x",
                                   actor=make.coordinator())


def test_list_cases_by_role_and_search(make):
    referrer, other = make.clinician(), make.clinician()
    mine = make.case(referrer=referrer)
    theirs = make.case(referrer=other)
    closed = make.case(referrer=referrer, status=CaseStatus.CLOSED)
    assert [c.id for c in services.list_cases(referrer)] == [mine.id]
    assert {c.id for c in services.list_cases(make.specialist())} == {mine.id, theirs.id}
    assert {c.id for c in services.list_cases(make.admin(), include_closed=True)} == {
        mine.id, theirs.id, closed.id}
    number = theirs.patient.hospital_number.lower()
    assert [c.id for c in services.list_cases(make.coordinator(),
                                              hospital_number=number)] == [theirs.id]
    assert services.list_cases(referrer, hospital_number=number).items == []


def test_responsible_clinician_sees_the_case_but_cannot_edit_it(make):
    responsible = make.clinician()
    item = make.item()
    assert services.list_cases(responsible).items == []
    sign_consensus(make, item, responsible)
    assert [c.id for c in services.list_cases(responsible)] == [item.case_id]
    assert services.can_view_case(responsible, item.case)
    assert not services.can_edit_case(responsible, item.case)


def test_today_uses_the_default_time_zone(app, frozen_clock):
    frozen_clock(utc(2026, 11, 27, 20, 0))  # 04:00 on the 28th in Asia/Shanghai
    app.config["DEFAULT_TIME_ZONE"], old = "Asia/Shanghai", app.config["DEFAULT_TIME_ZONE"]
    try:
        assert services.today() == date(2026, 11, 28)
    finally:
        app.config["DEFAULT_TIME_ZONE"] = old


def test_a_partial_edit_checks_variants_against_the_saved_status(make):
    positive = make.case(egfr_status=MarkerStatus.POSITIVE)
    untested = make.case()
    diff = services.update_case(positive, expected_version=1, actor=make.coordinator(),
                                values={"egfr_variant": "L858R"})
    assert diff == {"egfr_variant": [None, "L858R"]}
    with pytest.raises(InvalidError) as err:
        services.update_case(untested, expected_version=1, actor=make.coordinator(),
                             values={"egfr_variant": "L858R"})
    assert "egfr_variant" in err.value.fields


def test_changing_the_referrer_names_the_new_one_in_the_summary(make):
    case = make.case()
    new = make.clinician(name="Dr New")
    services.update_case(case, expected_version=1, actor=make.coordinator(), values={},
                         referrer=new)
    db.session.commit()
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "case.updated")).one()
    assert entry.summary.endswith("referrer now Dr New")
    assert entry.data["referring_clinician_id"][1] == new.id
