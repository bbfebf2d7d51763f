"""Domain operations on patients and cases."""
from __future__ import annotations

from mdt.cases.models import Case
from mdt.errors import NotFoundError
from mdt.extensions import db


def get_case(case_id: int) -> Case:
    """Return a case or raise NotFoundError."""
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFoundError("No such case.")
    return case
