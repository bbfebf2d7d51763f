"""Patients: one per hospital number, and a referral never mixes two people."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from mdt.cases.models import (
    Patient,
    Sex,
)
from mdt.errors import InvalidError
from mdt.extensions import db
from mdt.timezones import local_today


@dataclass(frozen=True)
class PatientInput:
    """What the referrer typed about the patient; name/DOB/sex may be blank for a known patient."""

    hospital_number: str
    name: str | None = None
    date_of_birth: date | None = None
    sex: Sex | None = None


def normalise_hospital_number(value: str) -> str:
    """Hospital numbers are compared without surrounding spaces and case."""
    return (value or "").strip().upper()


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def today() -> date:
    """Today's date in the app's default time zone."""
    return local_today()


def find_patient(hospital_number: str) -> Patient | None:
    """Return the patient with this hospital number, if any."""
    number = normalise_hospital_number(hospital_number)
    if not number:
        return None
    return db.session.scalar(select(Patient).where(Patient.hospital_number == number))


def check_patient_matches(patient: Patient, given: PatientInput) -> None:
    """Refuse typed details that contradict the stored patient (never mix two people)."""
    errors = {}
    if given.name and not _same_name(given.name, patient.name):
        errors["patient_name"] = "This hospital number belongs to a patient with another name."
    if given.date_of_birth and given.date_of_birth != patient.date_of_birth:
        errors["date_of_birth"] = ("This hospital number belongs to a patient with another "
                                   "date of birth.")
    if given.sex and given.sex != patient.sex and Sex.UNKNOWN not in (given.sex, patient.sex):
        errors["sex"] = "This hospital number belongs to a patient recorded with another sex."
    if errors:
        raise InvalidError("The details typed do not match the patient with this hospital number. "
                           "Check the hospital number and the patient.", fields=errors)


def _new_patient(given: PatientInput) -> Patient:
    number = normalise_hospital_number(given.hospital_number)
    errors = {}
    if len(number) > 40:
        errors["hospital_number"] = "At most 40 characters."
    if not (given.name and given.name.strip()):
        errors["patient_name"] = "A new patient needs a name."
    elif len(given.name.strip()) > 200:
        errors["patient_name"] = "At most 200 characters."
    if given.date_of_birth is None:
        errors["date_of_birth"] = "A new patient needs a date of birth."
    elif given.date_of_birth > today():
        errors["date_of_birth"] = "The date of birth cannot be in the future."
    elif given.date_of_birth < date(1900, 1, 1):
        errors["date_of_birth"] = "Check the year: before 1900."
    if given.sex is None:
        errors["sex"] = "Choose the patient's sex (or Unknown)."
    if errors:
        raise InvalidError("Some details of the new patient are missing or wrong.", fields=errors)
    patient = Patient(hospital_number=number, name=" ".join((given.name or "").split()),
                      date_of_birth=given.date_of_birth, sex=given.sex)
    db.session.add(patient)
    return patient


def resolve_patient(given: PatientInput) -> tuple[Patient, bool]:
    """Return the known patient (checked against what was typed) or a new one, and if new."""
    if not normalise_hospital_number(given.hospital_number):
        raise InvalidError("The hospital number is required.",
                           fields={"hospital_number": "The hospital number is required."})
    patient = find_patient(given.hospital_number)
    if patient is not None:
        check_patient_matches(patient, given)
        return patient, False
    return _new_patient(given), True
