"""Patients: one per hospital number, and a referral never mixes two people."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from mdt.auth.models import User
from mdt.cases.models import (
    Patient,
    Sex,
)
from mdt.cases.services.access import can_read_patient
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
    errors = mismatched_fields(patient, given)
    if errors:
        raise InvalidError("The details typed do not match the patient with this hospital number. "
                           "Check the hospital number and the patient.", fields=errors)


#: What someone who may not read the patient is told, whichever detail differs.
UNSEEN_MISMATCH = ("This hospital number is registered, and the name, date of birth or sex "
                   "typed do not match that patient. Check the hospital number and the details.")


def check_unseen_patient_matches(patient: Patient, given: PatientInput) -> None:
    """Refuse, for someone who may not read ``patient``, details that are missing or differ.

    They must type the name and the date of birth, and learn only whether
    everything typed matches, never which detail differs.
    """
    missing = {}
    if not (given.name and given.name.strip()):
        missing["patient_name"] = "Type the patient's name: this hospital number is registered."
    if given.date_of_birth is None:
        missing["date_of_birth"] = "Type the date of birth: this hospital number is registered."
    if missing:
        raise InvalidError("This hospital number is registered: type the patient's name and date "
                           "of birth, which must match the record.", fields=missing)
    if mismatched_fields(patient, given):
        raise InvalidError(UNSEEN_MISMATCH, fields={"hospital_number": UNSEEN_MISMATCH})


def mismatched_fields(patient: Patient, given: PatientInput) -> dict[str, str]:
    """Return ``{field: message}`` for each typed detail that contradicts the stored patient."""
    errors = {}
    if given.name and not _same_name(given.name, patient.name):
        errors["patient_name"] = "This hospital number belongs to a patient with another name."
    if given.date_of_birth and given.date_of_birth != patient.date_of_birth:
        errors["date_of_birth"] = ("This hospital number belongs to a patient with another "
                                   "date of birth.")
    if given.sex and given.sex != patient.sex and Sex.UNKNOWN not in (given.sex, patient.sex):
        errors["sex"] = "This hospital number belongs to a patient recorded with another sex."
    return errors


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


def resolve_patient(given: PatientInput, actor: User) -> tuple[Patient, bool]:
    """Return the known patient (checked against what was typed) or a new one, and if new.

    Someone who may not read the known patient (``can_read_patient``) must type
    their name and date of birth, and is told only that they do not match.
    """
    if not normalise_hospital_number(given.hospital_number):
        raise InvalidError("The hospital number is required.",
                           fields={"hospital_number": "The hospital number is required."})
    patient = find_patient(given.hospital_number)
    if patient is not None:
        if can_read_patient(actor, patient):
            check_patient_matches(patient, given)
        else:
            check_unseen_patient_matches(patient, given)
        return patient, False
    return _new_patient(given), True
