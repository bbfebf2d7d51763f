"""The home page: what the signed-in person needs to do next."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Show the signed-in person's next meetings, pending opinions and recent consensus."""
    return render_template("home/index.html")
