"""Reading cases: readiness for discussion, the case page and the case list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from mdt.auth.models import User
from mdt.cases.models import (
    Case,
    CaseStatus,
    Patient,
    ReferenceKind,
)
from mdt.cases.services.access import (
    can_read_all_cases,
    can_view_case,
    concerns_user_clause,
)
from mdt.cases.services.patients import normalise_hospital_number
from mdt.errors import NotFoundError
from mdt.extensions import db


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


#: Cases per page of the case list.
CASES_PER_PAGE = 50


def list_cases(user: User, *, include_closed: bool = False, hospital_number: str | None = None,
               page: int = 1, per_page: int | None = None) -> Pagination:
    """One page of the cases the user may see, newest first.

    All cases for MDT members, their patients' for clinicians; open ones only
    unless ``include_closed``; a hospital number narrows to that patient.
    """
    query = select(Case).options(*_case_options()).order_by(Case.created_at.desc(), Case.id.desc())
    if not can_read_all_cases(user):
        query = query.where(concerns_user_clause(user))
    if not include_closed:
        query = query.where(Case.status == CaseStatus.OPEN)
    if hospital_number is not None:
        query = query.where(Case.patient_id.in_(select(Patient.id).where(
            Patient.hospital_number == normalise_hospital_number(hospital_number))))
    return db.paginate(query, page=page, per_page=per_page or CASES_PER_PAGE, error_out=False)
