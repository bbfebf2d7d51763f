"""E-mail preferences: which kinds a person receives by e-mail (all are shown in-app)."""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from mdt.auth.models import User
from mdt.extensions import db
from mdt.notifications.models import (
    NotificationKind,
    NotificationPreference,
)

#: Kinds a person may not switch off by e-mail (the service depends on them).
ALWAYS_EMAILED = frozenset({NotificationKind.INVITATION})


#: ... and kinds that are mandatory only in one role (payload ``role``).
MANDATORY_FOR_ROLE = {NotificationKind.CONSENSUS_SIGNED: "responsible"}


def is_mandatory(kind: NotificationKind, role: str | None = None) -> bool:
    """Return True if ``kind`` (for a recipient in ``role``) is always e-mailed."""
    return kind in ALWAYS_EMAILED or (role is not None and MANDATORY_FOR_ROLE.get(kind) == role)


def email_preferences(user: User) -> dict[NotificationKind, bool]:
    """Return, for every kind, whether ``user`` receives it by e-mail."""
    stored = dict(db.session.execute(
        sa.select(NotificationPreference.kind, NotificationPreference.send_email)
        .where(NotificationPreference.user_id == user.id)).all())
    return {kind: True if kind in ALWAYS_EMAILED else stored.get(kind, True)
            for kind in NotificationKind}


def set_email_preferences(user: User, chosen: Iterable[NotificationKind | str]) -> None:
    """Store which kinds ``user`` wants by e-mail; mandatory kinds stay on whatever is chosen."""
    wanted = {NotificationKind(kind) for kind in chosen} | ALWAYS_EMAILED
    rows = {row.kind: row for row in db.session.scalars(
        sa.select(NotificationPreference).where(NotificationPreference.user_id == user.id))}
    for kind in NotificationKind:
        row = rows.get(kind) or NotificationPreference(user_id=user.id, kind=kind)
        row.send_email = kind in wanted
        db.session.add(row)
    db.session.flush()


def emails_wanted(user_id: int, kind: NotificationKind, role: str | None) -> bool:
    """Return True if the person gets ``kind`` by e-mail (mandatory, or not switched off)."""
    if is_mandatory(kind, role):
        return True
    choice = db.session.scalar(sa.select(NotificationPreference.send_email).where(
        NotificationPreference.user_id == user_id, NotificationPreference.kind == kind))
    return True if choice is None else choice
