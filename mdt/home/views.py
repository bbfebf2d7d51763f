"""The home page: what the signed-in person needs to do next."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from mdt.auth.models import Role
from mdt.cases.services import readiness
from mdt.home import services

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Show the person's next meetings, items awaiting their opinion and recent consensus."""
    user = current_user._get_current_object()
    is_coordinator = user.has_role(Role.COORDINATOR, Role.ADMIN)
    return render_template(
        "home/index.html",
        meetings=services.next_meetings(user),
        awaiting=services.awaiting_my_opinion(user),
        consensus=services.recent_consensus(user),
        my_cases=services.my_open_cases(user) if user.has_role(Role.CLINICIAN, Role.SPECIALIST) else [],
        unscheduled=services.cases_not_on_an_agenda() if is_coordinator else [],
        is_coordinator=is_coordinator,
        readiness=readiness,
    )
