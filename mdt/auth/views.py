"""Sign in and sign out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from mdt.audit import services as audit
from mdt.auth import services
from mdt.auth.forms import LoginForm
from mdt.auth.models import User
from mdt.errors import ThrottledError
from mdt.extensions import db, login_manager

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the signed-in user of a session, unless deactivated since (Flask-Login)."""
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.is_active else None


def _safe_next(target: str | None) -> str | None:
    """Only follow redirects to a path on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign a user in."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except ThrottledError as exc:
            db.session.commit()  # keep the audit entry of the refused attempt
            form.password.errors.append(exc.message)
            return render_template("auth/login.html", form=form), exc.status_code
        db.session.commit()
        if user is not None:
            login_user(user, remember=form.remember.data)
            flash(f"Signed in as {user.name}.", "success")
            return redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
        form.password.errors.append(
            "E-mail or password not recognised, or the account is deactivated.")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign the current user out."""
    user = current_user._get_current_object()
    audit.record("auth.logout", f"{user.email} signed out", actor=user, obj=user)
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
