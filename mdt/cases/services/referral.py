"""Referring a case and editing its clinical fields."""
from __future__ import annotations

from typing import Any

from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.cases.models import (
    Case,
    CaseStatus,
    MarkerStatus,
)
from mdt.cases.services.access import (
    can_choose_referrer,
    can_edit_case,
    can_refer,
    check_referrer,
)
from mdt.cases.services.patients import PatientInput, resolve_patient
from mdt.db import flush_or_conflict
from mdt.errors import ConflictError, ForbiddenError, InvalidError
from mdt.extensions import db

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


def blank_to_none(value: Any) -> Any:
    """Return ``value`` stripped, or None if it is a blank string."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def clean_case_values(values: dict[str, Any], case: Case | None = None) -> dict[str, Any]:
    """Check and normalise clinical fields (against ``case`` when editing); raise InvalidError."""
    unknown = set(values) - set(CASE_FIELDS)
    if unknown:
        raise InvalidError(f"Unknown case fields: {', '.join(sorted(unknown))}.")
    clean = {name: blank_to_none(value) for name, value in values.items()}
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


def create_case(*, patient: PatientInput, values: dict[str, Any], actor: User,
                referrer: User | None = None) -> Case:
    """Refer a case about a new or known patient; a coordinator may name another referrer."""
    if not can_refer(actor):
        raise ForbiddenError("Only clinicians, specialists and coordinators refer cases.")
    if referrer is None or referrer.id == actor.id:
        referrer = actor
    elif not can_choose_referrer(actor):
        raise ForbiddenError("Only a coordinator refers on someone else's behalf.")
    check_referrer(referrer)
    clean = clean_case_values(values)
    if "question" not in clean:
        raise InvalidError("Say what you are asking the MDT.",
                           fields={"question": "Say what you are asking the MDT."})
    record, is_new = resolve_patient(patient, actor)
    case = Case(patient=record, referring_clinician=referrer, status=CaseStatus.OPEN, **clean)
    db.session.add(case)
    flush_or_conflict("A patient with this hospital number was registered at the same moment. "
                      "Submit again to use that record.", integrity=True)
    if is_new:
        audit.record("patient.created", f"Patient {record.id} registered", obj=record,
                     case_id=case.id, actor=actor, data={"patient_id": record.id})
    audit.record("case.created", f"Case {case.id} referred", obj=case, case_id=case.id,
                 actor=actor,
                 data={"patient_id": record.id, "referring_clinician_id": referrer.id,
                       **{k: v for k, v in clean.items() if v is not None}})
    return case


def update_case(case: Case, *, expected_version: int, values: dict[str, Any], actor: User,
                referrer: User | None = None) -> dict[str, list[Any]]:
    """Change a case's clinical fields (a coordinator: its referrer too); refuse stale edits."""
    if not can_edit_case(actor, case):
        raise ForbiddenError("You may read this case but not change it.")
    if expected_version != case.version:
        raise ConflictError("Someone else changed this case since you opened it. "
                            "Nothing was saved; review the current version and apply your "
                            "changes again.")
    clean = clean_case_values(values, case)
    if referrer is not None and referrer.id != case.referring_clinician_id:
        if not can_choose_referrer(actor):
            raise ForbiddenError("Only a coordinator changes the referring clinician.")
        check_referrer(referrer)
        clean["referring_clinician_id"] = referrer.id
    diff = audit.changes(case, clean)
    if diff:
        summary = f"Case {case.id} updated ({', '.join(diff)})"
        if "referring_clinician_id" in diff:
            summary += f"; referrer now {referrer.name if referrer else '?'}"
        audit.record("case.updated", summary, obj=case,
                     case_id=case.id, actor=actor, data=diff)
        flush_or_conflict("Someone else changed this case at the same moment. Nothing was "
                          "saved; review the current version and apply your changes again.",
                          integrity=True)
    return diff
