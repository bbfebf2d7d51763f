"""A case's history, for coordinators and admins."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from mdt.audit import services
from mdt.auth.models import Role
from mdt.auth.permissions import roles_required
from mdt.cases import services as cases

bp = Blueprint("audit", __name__)


@bp.get("/cases/<int:case_id>/history")
@roles_required(Role.COORDINATOR, Role.ADMIN)
def case_history(case_id: int):
    """Show every audit entry for a case, newest first."""
    case = cases.get_case(case_id)
    return render_template("audit/case_history.html", case=case,
                           entries=services.history_for_case(
                               case.id, page=request.args.get("page", 1, type=int)))
