"""Domain operations on patients and cases: refer, edit, references, lists and who may see them.

Every change writes an audit entry in the same transaction; services flush,
the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import Role, User, UserRole
from mdt.cases.models import (
    Case,
    CaseReference,
    CaseStatus,
    MarkerStatus,
    Patient,
    ReferenceKind,
    Sex,
)
from mdt.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from mdt.extensions import db


def get_case(case_id: int) -> Case:
    """Return a case or raise NotFoundError."""
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFoundError("No such case.")
    return case


@dataclass(frozen=True)
class Check:
    label: str
    passed: bool


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def is_ready(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def missing(self) -> list[str]:
        return [check.label for check in self.checks if not check.passed]


def readiness(case: Case) -> Readiness:
    """Return the readiness checklist; a case failing it cannot be triaged for discussion."""
    return Readiness((
        Check("Question for the MDT asked", bool(case.question and case.question.strip())),
        Check("ECOG performance status recorded", case.ecog is not None),
        Check("At least one imaging reference",
              any(ref.kind == ReferenceKind.IMAGING and not ref.is_retracted
                  for ref in case.references)),
    ))


def concerns_user_clause(user: User):
    """SQL condition: the case was referred by ``user`` or names them responsible clinician."""
    from mdt.decisions.models import Consensus
    from mdt.meetings.models import AgendaItem

    # Aliases, so the EXISTS correlates only with Case even inside queries
    # that already join agenda items and consensus records.
    item, consensus = aliased(AgendaItem), aliased(Consensus)
    responsible = exists().where(
        item.case_id == Case.id, consensus.agenda_item_id == item.id,
        consensus.responsible_clinician_id == user.id)
    return or_(Case.referring_clinician_id == user.id, responsible)


def sees_all_cases(user: User) -> bool:
    """MDT members (coordinators, specialists) and admins see every case."""
    return user.has_role(Role.COORDINATOR, Role.SPECIALIST, Role.ADMIN)


def can_view_case(user: User, case: Case) -> bool:
    """Return True if ``user`` may read ``case``; clinicians only read their patients' cases."""
    if not user.is_authenticated:
        return False
    if sees_all_cases(user):
        return True
    return bool(db.session.scalar(
        select(Case.id).where(Case.id == case.id, concerns_user_clause(user))))


def get_visible_case(user: User, case_id: int) -> Case:
    """Return the case if ``user`` may read it; 404 otherwise (existence must not leak)."""
    case = get_case(case_id)
    if not can_view_case(user, case):
        raise NotFoundError("No such case.")
    return case


# --- Who may do what -------------------------------------------------------

#: Roles that may refer a case (a coordinator refers on a clinician's behalf).
REFERRING_ROLES = (Role.CLINICIAN, Role.SPECIALIST, Role.COORDINATOR)
#: Roles that can be named the referring clinician of a case.
REFERRER_ROLES = (Role.CLINICIAN, Role.SPECIALIST)


def may_refer(user: User) -> bool:
    """Clinicians, specialists and coordinators refer cases."""
    return user.is_authenticated and user.has_role(*REFERRING_ROLES)


def may_choose_referrer(user: User) -> bool:
    """Coordinators may refer on behalf of another clinician."""
    return user.is_authenticated and user.has_role(Role.COORDINATOR)


def may_edit_case(user: User, case: Case) -> bool:
    """The referrer, coordinators and specialists edit a case and its references."""
    if not user.is_authenticated:
        return False
    return case.referring_clinician_id == user.id or user.has_role(
        Role.COORDINATOR, Role.SPECIALIST)


def get_editable_case(user: User, case_id: int) -> Case:
    """Return the case if ``user`` may edit it: 404 if they may not see it, 403 if only read it."""
    case = get_visible_case(user, case_id)
    if not may_edit_case(user, case):
        raise ForbiddenError("You may read this case but not change it.")
    return case


def referrer_candidates() -> list[User]:
    """Active clinicians and specialists, by name: who can be named referring clinician."""
    return list(db.session.scalars(
        select(User).where(User.is_active.is_(True), User.id.in_(
            select(UserRole.user_id).where(UserRole.role.in_(REFERRER_ROLES))))
        .order_by(func.lower(User.name))))


def _check_referrer(referrer: User) -> None:
    if not (referrer.is_active and referrer.has_role(*REFERRER_ROLES)):
        raise InvalidError("The referring clinician must be an active clinician or specialist.",
                           fields={"referrer_id": "Choose an active clinician or specialist."})


# --- Patients ---------------------------------------------------------------

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
    return clock.now().astimezone(ZoneInfo(current_app.config["DEFAULT_TIME_ZONE"])).date()


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
        errors["date_of_birth"] = "This hospital number belongs to a patient with another date of birth."
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
    patient = Patient(hospital_number=number, name=" ".join(given.name.split()),
                      date_of_birth=given.date_of_birth, sex=given.sex)
    db.session.add(patient)
    return patient


def resolve_patient(given: PatientInput) -> tuple[Patient, bool]:
    """Return the existing patient (checked against what was typed) or a new one, and if it is new."""
    if not normalise_hospital_number(given.hospital_number):
        raise InvalidError("The hospital number is required.",
                           fields={"hospital_number": "The hospital number is required."})
    patient = find_patient(given.hospital_number)
    if patient is not None:
        check_patient_matches(patient, given)
        return patient, False
    return _new_patient(given), True


# --- Cases ------------------------------------------------------------------

#: The clinical fields of a case that a referral sets and an edit may change.
CASE_FIELDS = (
    "primary_site", "histology", "stage",
    "egfr_status", "egfr_variant", "alk_status", "ros1_status", "kras_status", "kras_variant",
    "pdl1_tps", "ecog", "systemic_therapy", "therapy_line", "question", "clinical_summary",
)
_MARKERS = ("egfr_status", "alk_status", "ros1_status", "kras_status")
_RANGES = {"pdl1_tps": (0, 100, "PD-L1 TPS is a percentage from 0 to 100."),
           "ecog": (0, 4, "ECOG is 0 to 4."),
           "therapy_line": (1, 99, "The line of therapy starts at 1.")}


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def clean_case_values(values: dict[str, Any], case: Case | None = None) -> dict[str, Any]:
    """Check and normalise clinical fields (against ``case`` for a partial edit); raise InvalidError."""
    unknown = set(values) - set(CASE_FIELDS)
    if unknown:
        raise InvalidError(f"Unknown case fields: {', '.join(sorted(unknown))}.")
    clean = {name: _blank_to_none(value) for name, value in values.items()}
    errors = _marker_errors(clean) | _bounds_errors(clean)
    if "question" in clean and not clean["question"]:
        errors["question"] = "Say what you are asking the MDT."
    if "primary_site" in clean and not clean["primary_site"]:
        clean["primary_site"] = "Lung"
    merged = {**{name: getattr(case, name) for name in CASE_FIELDS if case is not None}, **clean}
    for marker, variant in (("egfr_status", "egfr_variant"), ("kras_status", "kras_variant")):
        if merged.get(variant) and merged.get(marker) != MarkerStatus.POSITIVE:
            errors.setdefault(variant, "A variant is recorded only when the status is Positive.")
    if errors:
        raise InvalidError("Some case details need attention.", fields=errors)
    return clean


def _marker_errors(clean: dict[str, Any]) -> dict[str, str]:
    """Turn marker statuses into MarkerStatus (blank: not tested), in place."""
    errors = {}
    for name in set(_MARKERS) & set(clean):
        try:
            clean[name] = MarkerStatus(clean[name] or MarkerStatus.NOT_TESTED)
        except ValueError:
            errors[name] = "Choose a status from the list."
    return errors


def _bounds_errors(clean: dict[str, Any]) -> dict[str, str]:
    """Numbers within their clinical range, text within its column's length."""
    errors = {}
    for name, (low, high, message) in _RANGES.items():
        value = clean.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            errors[name] = message
    for name, value in clean.items():
        limit = getattr(Case.__table__.c[name].type, "length", None)
        if isinstance(value, str) and limit and len(value) > limit:
            errors[name] = f"At most {limit} characters."
    return errors


def _flush(conflict_message: str) -> None:
    """Flush, turning a concurrent change into a ConflictError (the caller rolls back)."""
    try:
        db.session.flush()
    except (IntegrityError, StaleDataError) as exc:
        raise ConflictError(conflict_message) from exc


def create_case(*, patient: PatientInput, values: dict[str, Any], actor: User,
                referrer: User | None = None) -> Case:
    """Refer a case about a new or existing patient; the actor refers unless a coordinator names someone."""
    if not may_refer(actor):
        raise ForbiddenError("Only clinicians, specialists and coordinators refer cases.")
    if referrer is None or referrer.id == actor.id:
        referrer = actor
    elif not may_choose_referrer(actor):
        raise ForbiddenError("Only a coordinator refers on someone else's behalf.")
    _check_referrer(referrer)
    clean = clean_case_values(values)
    if "question" not in clean:
        raise InvalidError("Say what you are asking the MDT.",
                           fields={"question": "Say what you are asking the MDT."})
    record, is_new = resolve_patient(patient)
    case = Case(patient=record, referring_clinician=referrer, status=CaseStatus.OPEN, **clean)
    db.session.add(case)
    _flush("A patient with this hospital number was registered at the same moment. "
           "Submit again to use that record.")
    if is_new:
        audit.record("patient.created", f"Patient {record.id} registered", obj=record,
                     case_id=case.id, actor_id=actor.id, data={"patient_id": record.id})
    audit.record("case.created", f"Case {case.id} referred", obj=case, case_id=case.id,
                 actor_id=actor.id,
                 data={"patient_id": record.id, "referring_clinician_id": referrer.id,
                       **{k: v for k, v in clean.items() if v is not None}})
    return case


def update_case(case: Case, *, expected_version: int, values: dict[str, Any], actor: User,
                referrer: User | None = None) -> dict[str, list[Any]]:
    """Change a case's clinical fields (and, for a coordinator, its referrer); refuse stale edits."""
    if not may_edit_case(actor, case):
        raise ForbiddenError("You may read this case but not change it.")
    if expected_version != case.version:
        raise ConflictError("Someone else changed this case since you opened it. "
                            "Nothing was saved; review the current version and apply your changes again.")
    clean = clean_case_values(values, case)
    if referrer is not None and referrer.id != case.referring_clinician_id:
        if not may_choose_referrer(actor):
            raise ForbiddenError("Only a coordinator changes the referring clinician.")
        _check_referrer(referrer)
        clean["referring_clinician_id"] = referrer.id
    diff = audit.changes(case, clean)
    if diff:
        summary = f"Case {case.id} updated ({', '.join(diff)})"
        if "referring_clinician_id" in diff:
            summary += f"; referrer now {referrer.name}"
        audit.record("case.updated", summary, obj=case,
                     case_id=case.id, actor_id=actor.id, data=diff)
        _flush("Someone else changed this case at the same moment. Nothing was saved; "
               "review the current version and apply your changes again.")
    return diff


# --- References -------------------------------------------------------------

def _reference_errors(accession_number: str, performed_on: date | None, description: str,
                      url: str | None) -> dict[str, str]:
    errors = {}
    if not accession_number:
        errors["accession_number"] = "The accession number is required."
    elif len(accession_number) > 64:
        errors["accession_number"] = "At most 64 characters."
    if not description:
        errors["description"] = "Describe the study or report."
    elif len(description) > 500:
        errors["description"] = "At most 500 characters."
    if performed_on is None:
        errors["performed_on"] = "The date is required."
    elif performed_on > today():
        errors["performed_on"] = "The date cannot be in the future."
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors["url"] = "Use a web address starting with http:// or https://."
        elif len(url) > 500:
            errors["url"] = "At most 500 characters."
    return errors


def add_reference(case: Case, *, kind: ReferenceKind, accession_number: str, performed_on: date | None,
                  description: str, actor: User, url: str | None = None) -> CaseReference:
    """Attach an imaging study or pathology report to a case."""
    if not may_edit_case(actor, case):
        raise ForbiddenError("You may read this case but not change it.")
    accession_number, description = (accession_number or "").strip(), (description or "").strip()
    url = _blank_to_none(url)
    errors = _reference_errors(accession_number, performed_on, description, url)
    if errors:
        raise InvalidError("The reference needs attention.", fields=errors)
    reference = CaseReference(case=case, kind=ReferenceKind(kind), accession_number=accession_number,
                              performed_on=performed_on, description=description, url=url)
    db.session.add(reference)
    db.session.flush()
    audit.record("reference.added", f"{reference.kind.label} reference {reference.id} added to case {case.id}",
                 obj=reference, case_id=case.id, actor_id=actor.id,
                 data={"kind": reference.kind, "accession_number": accession_number,
                       "performed_on": performed_on, "description": description, "url": url})
    return reference


def retract_reference(case: Case, reference_id: int, *, reason: str, actor: User) -> CaseReference:
    """Strike out a reference entered by mistake, with a reason; it is kept, never deleted."""
    if not may_edit_case(actor, case):
        raise ForbiddenError("You may read this case but not change it.")
    reference = db.session.get(CaseReference, reference_id)
    if reference is None or reference.case_id != case.id:
        raise NotFoundError("No such reference on this case.")
    if reference.is_retracted:
        raise InvalidError("This reference was already retracted.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidError("Say why the reference is retracted.",
                           fields={"reason": "Say why the reference is retracted."})
    reference.retracted_at = clock.now()
    reference.retraction_reason = reason[:500]
    audit.record("reference.retracted", f"Reference {reference.id} retracted from case {case.id}",
                 obj=reference, case_id=case.id, actor_id=actor.id,
                 data={"accession_number": reference.accession_number, "reason": reason[:500]})
    db.session.flush()
    return reference


# --- Reading ----------------------------------------------------------------

def _case_options():
    return (joinedload(Case.patient), joinedload(Case.referring_clinician),
            selectinload(Case.references))


@dataclass(frozen=True)
class CasePage:
    """Everything the case page shows, loaded in a fixed number of queries."""

    case: Case
    items: list[Any]
    readiness: Readiness

    @property
    def has_consensus(self) -> bool:
        return any(item.consensus is not None for item in self.items)


def case_page(user: User, case_id: int) -> CasePage:
    """Load a case the user may read with its patient, references and agenda items."""
    from mdt.meetings.models import AgendaItem

    case = db.session.scalar(select(Case).where(Case.id == case_id).options(*_case_options()))
    if case is None or not can_view_case(user, case):
        raise NotFoundError("No such case.")
    items = list(db.session.scalars(
        select(AgendaItem).where(AgendaItem.case_id == case.id)
        .options(joinedload(AgendaItem.meeting), selectinload(AgendaItem.consensus))
        .order_by(AgendaItem.id)))
    items.sort(key=lambda item: item.meeting.starts_at)
    return CasePage(case=case, items=items, readiness=readiness(case))


def list_cases(user: User, *, include_closed: bool = False,
               hospital_number: str | None = None) -> list[Case]:
    """Cases the user may see, newest first: all for MDT members, their patients' for clinicians."""
    query = select(Case).options(*_case_options()).order_by(Case.created_at.desc(), Case.id.desc())
    if not sees_all_cases(user):
        query = query.where(concerns_user_clause(user))
    if not include_closed:
        query = query.where(Case.status == CaseStatus.OPEN)
    if hospital_number is not None:
        query = query.where(Case.patient_id.in_(select(Patient.id).where(
            Patient.hospital_number == normalise_hospital_number(hospital_number))))
    return list(db.session.scalars(query))
