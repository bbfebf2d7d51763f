"""Domain operations on users: create, edit, deactivate, authenticate."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, select

from mdt import clock
from mdt.audit import services as audit
from mdt.auth import throttle
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
        throttle.reset(login_throttle_key(user.email))
    if "password" in diff or diff.get("is_active") == [True, False]:
        end_sessions(user)
        diff["sessions"] = ["…", "ended"]
    if diff:
        audit.record("user.updated", f"User {user.email} updated", actor=actor, obj=user,
                     data=diff)
    return user


#: After this many failed sign-ins within THROTTLE_WINDOW, the address waits THROTTLE_WINDOW.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)

#: One answer for every throttled address, registered or not (no account enumeration).
THROTTLED_MESSAGE = ("Too many failed sign-ins for this e-mail address. Wait 15 minutes and try "
                     "again, or ask an administrator to reset your password.")


def login_throttle_key(email: str) -> str:
    """Return the throttle key of an address, registered or not (its SHA-256, not the text)."""
    return "login:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, auditing the attempt.

    Every attempt on an address is counted before its password is checked, atomically
    (``mdt.auth.throttle``), and a success forgets the count. After
    ``THROTTLE_FAILURES`` the address, registered or not, gets ``ThrottledError`` with
    the same message, and no password is checked, for ``THROTTLE_WINDOW``.
    """
    user = find_by_email(email)
    address = normalise_email(email)[:254]
    if not throttle.take(login_throttle_key(email), THROTTLE_FAILURES, THROTTLE_WINDOW):
        audit.record("auth.login_throttled", "Sign-in refused: too many failed attempts",
                     actor=user, obj=user, data={"email": address, "window_minutes": 15})
        raise ThrottledError(THROTTLED_MESSAGE)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        reason = "unknown e-mail" if user is None else (
            "wrong password" if not ok else "account deactivated")
        audit.record("auth.login_failed", f"Failed sign-in ({reason})", actor=user, obj=user,
                     data={"email": address, "reason": reason})
        return None
    throttle.reset(login_throttle_key(email))
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = clock.now()
    audit.record("auth.login", f"{user.email} signed in", actor=user, obj=user)
    return user


def end_sessions(user: User) -> None:
    """End every session and remember-me cookie of ``user``, on every device.

    The generation is part of each session's id (``User.get_id``); raising it
    in SQL (``generation + 1``) is safe against a concurrent bump. The caller
    audits why (sign-out, password, deactivation, an administrator's request).
    """
    user.session_generation = User.session_generation + 1
    db.session.flush()


def sign_out(user: User) -> None:
    """Record that ``user`` signed out, and end every session of theirs (copies included)."""
    end_sessions(user)
    audit.record("auth.logout", f"{user.email} signed out", actor=user, obj=user)


def sign_out_everywhere(user: User, *, actor: User) -> None:
    """End every session of ``user`` at an administrator's request, audited."""
    end_sessions(user)
    audit.record("user.signed_out_everywhere", f"Every session of {user.email} ended",
                 actor=actor, obj=user)
