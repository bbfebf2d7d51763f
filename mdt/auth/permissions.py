"""Who may do what: decorators and predicates checked on the server."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from mdt.auth.models import Role


def roles_required(*roles: Role) -> Callable:
    """Require sign-in and at least one of ``roles``; otherwise 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def is_coordinator(user) -> bool:
    return user.is_authenticated and user.has_role(Role.COORDINATOR, Role.ADMIN)


def is_staff(user) -> bool:
    """Coordinators and admins see every case; others see what concerns them."""
    return is_coordinator(user)
