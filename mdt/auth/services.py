"""Domain operations on users: create, edit, deactivate, authenticate."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select

from mdt import clock
from mdt.audit import services as audit
from mdt.audit.models import AuditEntry
from mdt.auth.models import Discipline, Role, User, UserRole
from mdt.auth.passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password
from mdt.db import get_or_404
from mdt.errors import InvalidError, ThrottledError
from mdt.extensions import db


def normalise_email(email: str) -> str:
    """Return the address as stored: trimmed, lower-case."""
    return email.strip().lower()


def get_user(user_id: int) -> User:
    """Return a user or raise NotFoundError."""
    return get_or_404(User, user_id, "No such user.")


def find_by_email(email: str) -> User | None:
    """Return the user with this address (any case), if any."""
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def list_users(*, active_only: bool = False) -> list[User]:
    """Return users by name (only active ones if asked)."""
    query = select(User).order_by(func.lower(User.name))
    if active_only:
        query = query.where(User.is_active.is_(True))
    return list(db.session.scalars(query))


def _check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidError(f"The password must have at least {MIN_LENGTH} characters.",
                           fields={"password": f"At least {MIN_LENGTH} characters."})


def create_user(*, actor: User | None, email: str, name: str, discipline: Discipline,
                roles: Iterable[Role], password: str | None = None,
                password_hash: str | None = None, time_zone: str | None = None) -> User:
    """Create a user with an Argon2id-hashed password.

    Give ``password``, or ``password_hash`` when the caller already holds an
    Argon2id hash (demo data: many people, one password, one slow hash).
    """
    email = normalise_email(email)
    if find_by_email(email) is not None:
        raise InvalidError("A user with this e-mail already exists.",
                           fields={"email": "Already in use."})
    if password_hash is None or not password_hash.startswith("$argon2id$"):
        password = password or ""
        _check_password(password)
        password_hash = hash_password(password)
    user = User(email=email, name=name.strip(), discipline=Discipline(discipline),
                password_hash=password_hash, time_zone=time_zone)
    user.role_rows = [UserRole(role=Role(r)) for r in set(roles)]
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", f"User {user.email} created", actor=actor, obj=user,
                 data={"roles": sorted(r.value for r in user.roles),
                       "discipline": user.discipline.value})
    return user


def update_user(user: User, *, actor: User | None, name: str, email: str,
                discipline: Discipline,
                roles: Iterable[Role], is_active: bool, time_zone: str | None = None,
                password: str | None = None) -> User:
    """Change a user's details, roles, active flag and optionally password."""
    email = normalise_email(email)
    other = find_by_email(email)
    if other is not None and other.id != user.id:
        raise InvalidError("A user with this e-mail already exists.",
                           fields={"email": "Already in use."})
    diff = audit.changes(user, {"name": name.strip(), "email": email,
                                "discipline": Discipline(discipline), "is_active": is_active,
                                "time_zone": time_zone})
    new_roles = {Role(r) for r in roles}
    if new_roles != user.roles:
        diff["roles"] = [sorted(r.value for r in user.roles), sorted(r.value for r in new_roles)]
        user.role_rows = [row for row in user.role_rows if row.role in new_roles] + [
            UserRole(role=r) for r in new_roles - user.roles
        ]
    if password:
        _check_password(password)
        user.password_hash = hash_password(password)
        diff["password"] = ["…", "changed"]
    if diff:
        audit.record("user.updated", f"User {user.email} updated", actor=actor, obj=user,
                     data=diff)
    return user


#: After this many failed sign-ins within THROTTLE_WINDOW, the account waits.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)


def recent_failures(user: User) -> int:
    """Count the account's failed sign-ins in the throttle window since its last success."""
    since = clock.now() - THROTTLE_WINDOW
    if user.last_login_at is not None and user.last_login_at > since:
        since = user.last_login_at
    return db.session.scalar(
        select(func.count(AuditEntry.id)).where(
            AuditEntry.object_type == User.__tablename__, AuditEntry.object_id == user.id,
            AuditEntry.action == "auth.login_failed", AuditEntry.created_at > since)) or 0


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, auditing the attempt.

    Raises ``ThrottledError`` while an account has had too many recent failed
    attempts (the failures are the audit entries themselves), so a password
    cannot be guessed by trying many.
    """
    user = find_by_email(email)
    if user is not None and recent_failures(user) >= THROTTLE_FAILURES:
        audit.record("auth.login_throttled", "Sign-in refused: too many failed attempts",
                     actor=user, obj=user, data={"window_minutes": 15})
        raise ThrottledError(
            "Too many failed sign-ins for this account. Wait 15 minutes and try again, "
            "or ask an administrator to reset your password.")
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        reason = "unknown e-mail" if user is None else (
            "wrong password" if not ok else "account deactivated")
        audit.record("auth.login_failed", f"Failed sign-in ({reason})",
                     actor=user, obj=user,
                     data={"email": normalise_email(email)[:254], "reason": reason})
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = clock.now()
    audit.record("auth.login", f"{user.email} signed in", actor=user, obj=user)
    return user
