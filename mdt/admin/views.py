"""Admin pages to add, edit and deactivate users."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from mdt.auth import services, sessions
from mdt.auth.forms import UserForm
from mdt.auth.models import Discipline, Role, User
from mdt.auth.permissions import roles_required
from mdt.errors import InvalidError
from mdt.extensions import db
from mdt.web import apply_field_errors

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@roles_required(Role.ADMIN)
def users():
    """List every user with roles and status."""
    return render_template("admin/users.html", users=services.list_users())


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_user():
    """Add a user."""
    form = UserForm()
    if form.validate_on_submit():
        if not form.password.data:
            form.password.errors.append("A new user needs a password.")
        else:
            try:
                user = services.create_user(
                    actor=current_user, email=form.email.data, name=form.name.data,
                    discipline=Discipline(form.discipline.data),
                    roles=[Role(r) for r in form.roles.data], password=form.password.data,
                    time_zone=form.time_zone.data or None)
                if not form.is_active.data:
                    user.is_active = False
                db.session.commit()
                flash(f"User {user.name} created.", "success")
                return redirect(url_for("admin.users"))
            except InvalidError as exc:
                db.session.rollback()
                apply_field_errors(form, exc)
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def edit_user(user_id: int):
    """Edit a user, change roles, reset the password or deactivate."""
    user = services.get_user(user_id)
    form = UserForm(obj=user)
    if not form.is_submitted():
        form.roles.data = sorted(r.value for r in user.roles)
        form.discipline.data = user.discipline.value
    if form.validate_on_submit():
        try:
            generation = user.session_generation
            services.update_user(
                user, actor=current_user, name=form.name.data, email=form.email.data,
                discipline=Discipline(form.discipline.data),
                roles=[Role(r) for r in form.roles.data], is_active=form.is_active.data,
                time_zone=form.time_zone.data or None, password=form.password.data or None)
            db.session.commit()
            if user.session_generation != generation:
                _signed_out(user)
            flash(f"User {user.name} saved.", "success")
            return redirect(url_for("admin.users"))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("admin/user_form.html", form=form, user=user)


@bp.post("/users/<int:user_id>/sign-out")
@roles_required(Role.ADMIN)
def sign_out_user(user_id: int):
    """End every session and remember-me cookie of a user, on every device."""
    user = services.get_user(user_id)  # CSRF: checked for every POST by CSRFProtect
    services.sign_out_everywhere(user, actor=current_user)
    db.session.commit()
    _signed_out(user)
    flash(f"{user.name} is signed out everywhere.", "success")
    return redirect(url_for("admin.edit_user", user_id=user.id))


def _signed_out(user: User) -> None:
    """Keep the administrator's own session when they ended their own sessions elsewhere."""
    if user.id == current_user.id and user.is_active:
        sessions.sign_in(user, remember=False)
