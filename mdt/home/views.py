"""The home page: what the signed-in person needs to do next."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from mdt.auth.permissions import can_coordinate
from mdt.cases import services as cases
from mdt.decisions import services as decisions
from mdt.home import services

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Show the person's next meetings, items awaiting their opinion and recent consensus."""
    user = current_user._get_current_object()
    coordinates = can_coordinate(user)
    return render_template(
        "home/index.html",
        meetings=services.next_meetings(user),
        awaiting=services.awaiting_my_opinion(user),
        consensus=services.recent_consensus(user),
        my_cases=services.my_open_cases(user) if cases.can_be_referrer(user) else [],
        unscheduled=services.cases_not_on_an_agenda() if coordinates else [],
        can_coordinate=coordinates, can_refer=cases.can_refer(user),
        gives_opinions=decisions.can_give_opinions(user),
        readiness=cases.readiness,
    )
