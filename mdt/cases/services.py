"""Domain operations on patients and cases."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import aliased

from mdt.auth.models import Role, User
from mdt.cases.models import Case, ReferenceKind
from mdt.errors import NotFoundError
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
              any(ref.kind == ReferenceKind.IMAGING for ref in case.references)),
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
