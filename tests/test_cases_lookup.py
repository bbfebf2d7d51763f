"""The referral form's hospital-number look-up reveals a patient only to those who may read them,
is audited, and is throttled per person."""
from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mdt.audit.models import AuditEntry
from mdt.auth.models import User
from mdt.cases import services
from mdt.cases.models import Case, Sex
from mdt.errors import ThrottledError
from mdt.extensions import db

from .test_cases_views import REFERRAL, page, sign_consensus

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOOKUP = {"hospital_number": "h7100", "lookup": "Look up hospital number"}
SECRET_DETAILS = ("Chen Jie", "03 Feb 1955", "born", "Registered patient:")


@pytest.fixture
def known(make):
    """A patient, the clinician who referred their case, and a clinician with no link to them."""
    patient = make.patient(hospital_number="H7100", name="Chen Jie",
                           date_of_birth=date(1955, 2, 3), sex=Sex.MALE)
    referrer = make.clinician()
    make.case(patient=patient, referrer=referrer)
    return patient, referrer, make.clinician()


def lookups(actor: User | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.action == "patient.lookup").order_by(AuditEntry.id)
    if actor is not None:
        query = query.where(AuditEntry.actor_id == actor.id)
    return list(db.session.scalars(query))


def case_count() -> int:
    return db.session.scalar(select(func.count(Case.id)))


def test_a_stranger_learns_only_that_the_number_is_registered(client, login_as, known):
    patient, _, stranger = known
    login_as(stranger)
    html = page(client.post("/cases/new", data=LOOKUP))
    assert "This hospital number is registered." in html
    assert not any(secret in html for secret in SECRET_DETAILS)
    assert 'name="confirmed_patient_id" type="hidden" value=""' in html  # not even its id


@pytest.mark.parametrize("who", ["referrer", "specialist", "coordinator", "responsible"])
def test_those_who_may_read_the_patient_see_their_details(client, make, login_as, known, who):
    patient, referrer, _ = known
    reader = {"referrer": referrer, "specialist": make.specialist(),
              "coordinator": make.coordinator(), "responsible": make.clinician()}[who]
    if who == "responsible":  # named responsible clinician in a signed consensus
        item = make.item(case=db.session.scalars(select(Case)).one())
        sign_consensus(make, item, responsible=reader)
    login_as(reader)
    html = page(client.post("/cases/new", data=LOOKUP))
    assert "Registered patient:" in html and "Chen Jie" in html and "03 Feb 1955" in html


def test_a_stranger_is_told_only_whether_what_they_typed_matches(client, login_as, known):
    login_as(known[2])
    matching = {**LOOKUP, "patient_name": "chen  jie", "date_of_birth": "1955-02-03"}
    assert "The details you typed match" in page(client.post("/cases/new", data=matching))
    wrong_date = {**matching, "date_of_birth": "1955-02-04"}
    html = page(client.post("/cases/new", data=wrong_date))
    assert "do not match" in html and "another date of birth" not in html
    wrong_sex = {**matching, "sex": "female"}
    html = page(client.post("/cases/new", data=wrong_sex))
    assert "do not match" in html and "another sex" not in html
    name_only = {**LOOKUP, "patient_name": "Chen Jie"}  # one detail alone is never checked
    html = page(client.post("/cases/new", data=name_only))
    assert "match" not in html.replace("must match", "").replace("only if they match", "")
    assert [e.data["matches"] for e in lookups(known[2])] == [True, False, False, None]


def test_a_stranger_refers_only_with_a_matching_name_and_date_of_birth(client, login_as, known):
    patient, _, stranger = known
    login_as(stranger)
    blank = {**REFERRAL, "hospital_number": "H7100", "patient_name": "", "date_of_birth": "",
             "sex": "", "submit": "Refer case"}
    html = page(client.post("/cases/new", data=blank))
    assert "Type the patient&#39;s name: this hospital number is registered." in html
    assert "Type the date of birth: this hospital number is registered." in html
    assert not any(secret in html for secret in SECRET_DETAILS)
    html = page(client.post("/cases/new", data={**blank, "confirmed_patient_id": str(patient.id)}))
    assert "Type the date of birth" in html  # a forged confirmation changes nothing
    wrong = {**blank, "patient_name": "Chen Jie", "date_of_birth": "1956-02-03"}
    html = page(client.post("/cases/new", data=wrong))
    assert "do not match that patient" in html and "another date of birth" not in html
    assert case_count() == 1

    right = {**blank, "patient_name": "Chen Jie", "date_of_birth": "1955-02-03"}
    response = client.post("/cases/new", data=right)
    assert response.status_code == 302
    assert case_count() == 2
    # Now they refer a case of this patient, and so may read them.
    assert "Registered patient:" in page(client.post("/cases/new", data=LOOKUP))


def test_every_look_up_is_audited_even_when_the_referral_is_refused(client, login_as, known):
    patient, _, stranger = known
    login_as(stranger)
    client.post("/cases/new", data=LOOKUP)
    client.post("/cases/new", data={**LOOKUP, "hospital_number": "H-NEW-1"})
    client.post("/cases/new", data={**REFERRAL, "hospital_number": "H7100",
                                    "patient_name": "Someone Else", "submit": "Refer case"})
    client.post("/cases/new", data={**REFERRAL, "question": "", "submit": "Refer case"})
    entries = lookups(stranger)
    assert [(e.object_id, e.data["registered"], e.data["shown"]) for e in entries] == [
        (patient.id, True, False), (None, False, False), (patient.id, True, False),
        (None, False, False)]
    assert all("Chen" not in e.summary and "H7100" not in str(e.data) for e in entries)
    assert case_count() == 1


def test_look_ups_are_throttled_per_person(app, client, make, login_as, known, monkeypatch,
                                           frozen_clock):
    monkeypatch.setitem(app.config, "PATIENT_LOOKUP_LIMIT", 3)
    frozen_clock(T0)
    stranger = known[2]
    login_as(stranger)
    for _ in range(3):
        assert client.post("/cases/new", data=LOOKUP).status_code == 200
    refused = client.post("/cases/new", data={**REFERRAL, "submit": "Refer case"})
    html = page(refused)
    assert refused.status_code == 429
    assert 'id="hospital_number-err"' in html and "You have looked up 3 hospital numbers" in html
    assert 'value="Zhang Min"' in html  # what was typed is kept
    assert case_count() == 1  # and nothing was referred
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "patient.lookup_refused")) == 1
    other = login_as(make.clinician(), on=app.test_client())
    assert other.post("/cases/new", data=LOOKUP).status_code == 200  # per person

    frozen_clock(T0 + timedelta(minutes=61))
    login_as(stranger)  # signed in again after the idle timeout
    assert client.post("/cases/new", data=LOOKUP).status_code == 200


def test_a_refused_referral_still_counts_as_a_look_up(app, client, login_as, known,
                                                     monkeypatch):
    monkeypatch.setitem(app.config, "PATIENT_LOOKUP_LIMIT", 2)
    login_as(known[2])
    bad = {**REFERRAL, "hospital_number": "H7100", "patient_name": "Guess One",
           "date_of_birth": "1955-01-01", "submit": "Refer case"}
    assert client.post("/cases/new", data=bad).status_code == 200
    assert client.post("/cases/new", data={**bad, "patient_name": "Guess Two"}).status_code == 200
    assert client.post("/cases/new", data={**bad, "patient_name": "Guess 3"}).status_code == 429


def test_simultaneous_look_ups_count_atomically(app, make, known, monkeypatch):
    monkeypatch.setitem(app.config, "PATIENT_LOOKUP_LIMIT", 5)
    stranger_id = known[2].id
    barrier = threading.Barrier(12)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def look_up():
        try:
            with app.app_context():
                actor = db.session.get(User, stranger_id)
                barrier.wait(timeout=20)
                try:
                    services.look_up_patient(actor, services.PatientInput("H7100"))
                    outcomes.append("answered")
                except ThrottledError:
                    outcomes.append("refused")
                db.session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(outcomes) == ["answered"] * 5 + ["refused"] * 7
    assert len(lookups()) == 5


def test_can_read_patient(make, known):
    patient, referrer, stranger = known
    assert services.can_read_patient(referrer, patient)
    assert not services.can_read_patient(stranger, patient)
    for reader in (make.specialist(), make.coordinator(), make.admin()):
        assert services.can_read_patient(reader, patient)
