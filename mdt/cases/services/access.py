"""Who may read and change cases: the rules, and the loaders that apply them."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import aliased

from mdt.auth.models import Role, User, UserRole
from mdt.cases.models import (
    Case,
    Patient,
)
from mdt.db import get_or_404
from mdt.errors import ForbiddenError, InvalidError, NotFoundError
from mdt.extensions import db


def get_case(case_id: int) -> Case:
    """Return a case or raise NotFoundError."""
    return get_or_404(Case, case_id, "No such case.")


def concerns_user_clause(user: User):
    """Return the SQL condition: the case was referred by ``user`` or names them responsible."""
    from mdt.decisions.models import Consensus
    from mdt.meetings.models import AgendaItem

    # Aliases, so the EXISTS correlates only with Case even inside queries
    # that already join agenda items and consensus records.
    item, consensus = aliased(AgendaItem), aliased(Consensus)
    responsible = exists().where(
        item.case_id == Case.id, consensus.agenda_item_id == item.id,
        consensus.responsible_clinician_id == user.id)
    return or_(Case.referring_clinician_id == user.id, responsible)


def can_read_all_cases(user: User) -> bool:
    """MDT members (coordinators, specialists) and admins see every case."""
    return user.has_role(Role.COORDINATOR, Role.SPECIALIST, Role.ADMIN)


def can_view_case(user: User, case: Case) -> bool:
    """Return True if ``user`` may read ``case``; clinicians only read their patients' cases."""
    if not user.is_authenticated:
        return False
    if can_read_all_cases(user):
        return True
    return bool(db.session.scalar(
        select(Case.id).where(Case.id == case.id, concerns_user_clause(user))))


def can_read_patient(user: User, patient: Patient) -> bool:
    """Return True if ``user`` may read ``patient``: MDT members all; others through a case.

    A clinician reads a patient when they may read any of that patient's cases
    (``can_view_case``: they referred it, or are responsible for its consensus).
    """
    if not user.is_authenticated:
        return False
    if can_read_all_cases(user):
        return True
    return db.session.scalar(
        select(Case.id).where(Case.patient_id == patient.id, concerns_user_clause(user))
        .limit(1)) is not None


def get_visible_case(user: User, case_id: int) -> Case:
    """Return the case if ``user`` may read it; 404 otherwise (existence must not leak)."""
    case = get_case(case_id)
    if not can_view_case(user, case):
        raise NotFoundError("No such case.")
    return case


#: Roles that may refer a case (a coordinator refers on a clinician's behalf).
REFERRING_ROLES = (Role.CLINICIAN, Role.SPECIALIST, Role.COORDINATOR)


#: Roles that can be named the referring clinician of a case.
REFERRER_ROLES = (Role.CLINICIAN, Role.SPECIALIST)


def can_refer(user: User) -> bool:
    """Clinicians, specialists and coordinators refer cases."""
    return user.is_authenticated and user.has_role(*REFERRING_ROLES)


def can_choose_referrer(user: User) -> bool:
    """Coordinators may refer on behalf of another clinician."""
    return user.is_authenticated and user.has_role(Role.COORDINATOR)


def can_edit_case(user: User, case: Case) -> bool:
    """Return True for the referrer, coordinators and specialists: they edit a case."""
    if not user.is_authenticated:
        return False
    return case.referring_clinician_id == user.id or user.has_role(
        Role.COORDINATOR, Role.SPECIALIST)


def get_editable_case(user: User, case_id: int) -> Case:
    """Return the case if ``user`` may edit it: 404 if they may not see it, 403 if only read it."""
    case = get_visible_case(user, case_id)
    if not can_edit_case(user, case):
        raise ForbiddenError("You may read this case but not change it.")
    return case


def referrer_candidates() -> list[User]:
    """Active clinicians and specialists, by name: who can be named referring clinician."""
    return list(db.session.scalars(
        select(User).where(User.is_active.is_(True), User.id.in_(
            select(UserRole.user_id).where(UserRole.role.in_(REFERRER_ROLES))))
        .order_by(func.lower(User.name))))


def can_be_referrer(user: User) -> bool:
    """Clinicians and specialists can be named a case's referring clinician."""
    return bool(user.is_authenticated and user.has_role(*REFERRER_ROLES))


def check_referrer(referrer: User) -> None:
    """Raise InvalidError unless ``referrer`` is an active clinician or specialist."""
    if not (referrer.is_active and can_be_referrer(referrer)):
        raise InvalidError("The referring clinician must be an active clinician or specialist.",
                           fields={"referrer_id": "Choose an active clinician or specialist."})


def visible_case_ids(user: User, case_ids: Iterable[int]) -> set[int]:
    """Return which of ``case_ids`` ``user`` may read (one query at most)."""
    wanted = set(case_ids)
    if not wanted or can_read_all_cases(user):
        return wanted
    return set(db.session.scalars(
        select(Case.id).where(Case.id.in_(wanted), concerns_user_clause(user))))
