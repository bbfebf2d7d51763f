"""Sign in and sign out; the session rules run before every request (``mdt.auth.sessions``)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from mdt.auth import services, sessions
from mdt.auth.forms import LoginForm
from mdt.errors import ThrottledError
from mdt.extensions import db, login_manager

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


login_manager.user_loader(sessions.load_user)


@bp.before_app_request
def session_limits():
    """Sign out an idle session and refuse an expired remember-me cookie before any view."""
    return sessions.enforce_limits()


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign a user in."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if sessions.remember_lifetime().total_seconds() <= 0:
        del form.remember
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except ThrottledError as exc:
            db.session.commit()  # keep the audit entry of the refused attempt
            form.password.errors.append(exc.message)
            return _login_page(form), exc.status_code
        db.session.commit()
        if user is not None:
            sessions.sign_in(user, remember=bool(form.remember and form.remember.data))
            flash(f"Signed in as {user.name}.", "success")
            return redirect(sessions.safe_next(request.args.get("next")) or url_for("home.index"))
        form.password.errors.append(
            "E-mail or password not recognised, or the account is deactivated.")
    return _login_page(form)


def _login_page(form: LoginForm) -> str:
    return render_template("auth/login.html", form=form,
                           remember_days=sessions.remember_lifetime().days)


@bp.post("/logout")
@login_required
def logout():
    """Sign the current user out here and on every other device."""
    services.sign_out(current_user._get_current_object())
    db.session.commit()
    sessions.sign_out()
    flash("You are signed out, on this device and on any other.", "info")
    return redirect(url_for("auth.login"))
