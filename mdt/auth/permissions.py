"""Who may do what, by role: the route decorator and the role-level rules.

Rules about a particular record live in the feature that owns it
(``cases.services.can_view_case``, ``meetings.services.can_record_presence``,
``decisions.services.can_sign``…) and build on these. Every rule is a
``can_…`` function of the user; views, templates (given booleans), e-mails
and home pages call the same function.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required

from mdt.auth.models import Role, User

#: Roles that run meetings: coordinators, and admins who stand in for them.
COORDINATING_ROLES = (Role.COORDINATOR, Role.ADMIN)


def roles_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require sign-in and at least one of ``roles``; otherwise 403."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def can_coordinate(user: User) -> bool:
    """Coordinators and admins schedule meetings, manage agendas and chase cases."""
    return bool(user.is_authenticated and user.has_role(*COORDINATING_ROLES))
