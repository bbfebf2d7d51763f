"""The referral form's hospital-number look-up: what the referrer may learn, audited and throttled.

Someone who may read the registered patient (``can_read_patient``) is shown
their name, date of birth and sex. Anyone else learns only that the number
is registered and, once they have typed a name and a date of birth, whether
what they typed matches. Every look-up is an audit entry, and a person may
make ``PATIENT_LOOKUP_LIMIT`` of them per ``PATIENT_LOOKUP_WINDOW_MINUTES``
(counted atomically by ``mdt.auth.throttle``), so a number cannot be tried
against many names and birthdays.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from mdt.audit import services as audit
from mdt.auth import throttle
from mdt.auth.models import User
from mdt.cases.models import Patient
from mdt.cases.services.access import can_read_patient
from mdt.cases.services.patients import PatientInput, find_patient, mismatched_fields
from mdt.errors import ThrottledError


@dataclass(frozen=True)
class PatientLookup:
    """What the referral form may say about the hospital number typed."""

    #: The registered patient with this number, if any (not for display: see ``shown``).
    patient: Patient | None
    #: The referrer may read this patient, and is shown their details.
    readable: bool
    #: For a patient the referrer may not read: whether the typed name and date of
    #: birth (and sex, if chosen) match; None until both name and date are typed.
    matches: bool | None = None

    @property
    def registered(self) -> bool:
        """Return True if the number belongs to a registered patient."""
        return self.patient is not None

    @property
    def shown(self) -> Patient | None:
        """Return the patient whose details the referrer may see, if any."""
        return self.patient if self.readable else None


def lookup_limit() -> tuple[int, timedelta]:
    """Return how many look-ups a person may make, and in what window."""
    config = current_app.config
    return (config["PATIENT_LOOKUP_LIMIT"],
            timedelta(minutes=config["PATIENT_LOOKUP_WINDOW_MINUTES"]))


def look_up_patient(actor: User, given: PatientInput) -> PatientLookup:
    """Count, audit and answer a look-up of the typed hospital number by ``actor``.

    Raises ``ThrottledError`` (with the message next to the hospital number)
    once ``actor`` has used up their look-ups; the refusal is audited too, and
    the caller commits it rather than rolling it back.
    """
    limit, window = lookup_limit()
    if not throttle.take(f"patient-lookup:{actor.id}", limit, window):
        minutes = int(window.total_seconds() // 60)
        audit.record("patient.lookup_refused", "Hospital number look-up refused: too many",
                     actor=actor, data={"limit": limit, "window_minutes": minutes})
        message = (f"You have looked up {limit} hospital numbers in {minutes} minutes, the most "
                   "allowed. Wait, then try again; nothing you typed was saved.")
        raise ThrottledError(message, fields={"hospital_number": message})
    patient = find_patient(given.hospital_number)
    result = PatientLookup(patient, readable=patient is not None
                           and can_read_patient(actor, patient))
    if patient is not None and not result.readable and given.name and given.date_of_birth:
        result = PatientLookup(patient, False, matches=not mismatched_fields(patient, given))
    audit.record("patient.lookup", _summary(result), actor=actor, obj=patient,
                 data={"registered": result.registered, "shown": result.readable,
                       "matches": result.matches})
    return result


def _summary(result: PatientLookup) -> str:
    if result.patient is None:
        return "Hospital number looked up: not registered"
    if result.readable:
        return f"Hospital number looked up: patient {result.patient.id} shown"
    return f"Hospital number looked up: patient {result.patient.id} not shown"
