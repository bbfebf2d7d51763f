"""Imaging and pathology references of a case: added, and retracted but never deleted."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.cases.models import (
    Case,
    CaseReference,
    ReferenceKind,
)
from mdt.cases.services.access import can_edit_case
from mdt.cases.services.patients import today
from mdt.cases.services.referral import blank_to_none
from mdt.errors import ForbiddenError, InvalidError, NotFoundError
from mdt.extensions import db


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


def add_reference(case: Case, *, kind: ReferenceKind, accession_number: str,
                  performed_on: date | None,
                  description: str, actor: User, url: str | None = None) -> CaseReference:
    """Attach an imaging study or pathology report to a case."""
    if not can_edit_case(actor, case):
        raise ForbiddenError("You may read this case but not change it.")
    accession_number, description = (accession_number or "").strip(), (description or "").strip()
    url = blank_to_none(url)
    errors = _reference_errors(accession_number, performed_on, description, url)
    if errors:
        raise InvalidError("The reference needs attention.", fields=errors)
    reference = CaseReference(case=case, kind=ReferenceKind(kind),
                              accession_number=accession_number,
                              performed_on=performed_on, description=description, url=url)
    db.session.add(reference)
    db.session.flush()
    audit.record("reference.added",
                 f"{reference.kind.label} reference {reference.id} added to case {case.id}",
                 obj=reference, case_id=case.id, actor=actor,
                 data={"kind": reference.kind, "accession_number": accession_number,
                       "performed_on": performed_on, "description": description, "url": url})
    return reference


def retract_reference(case: Case, reference_id: int, *, reason: str, actor: User) -> CaseReference:
    """Strike out a reference entered by mistake, with a reason; it is kept, never deleted."""
    if not can_edit_case(actor, case):
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
                 obj=reference, case_id=case.id, actor=actor,
                 data={"accession_number": reference.accession_number, "reason": reason[:500]})
    db.session.flush()
    return reference
