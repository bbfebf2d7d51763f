"""Audit entries, written in the same transaction as the change they describe."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mdt import clock
from mdt.auth.models import User
from mdt.db import Base, UTCDateTime


class AuditEntry(Base):
    """One recorded action. Append-only: never updated, never deleted."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)
    #: Who acted; NULL for the system or an unknown person (failed sign-in).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: Dotted verb, e.g. ``case.created``, ``opinion.changed``, ``auth.login_failed``.
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(sa.String(40))
    object_id: Mapped[int | None]
    #: The case the entry concerns, so a case's whole history is one query.
    case_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("cases.id", ondelete="RESTRICT"), index=True
    )
    #: One readable line, without more patient data than needed.
    summary: Mapped[str] = mapped_column(sa.String(500))
    #: What changed: ``{"field": [old, new], ...}`` or the values created.
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    actor: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (sa.Index("ix_audit_entries_object", "object_type", "object_id"),)
