"""Users, their discipline and their roles."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mdt.db import Base, TimestampMixin, str_enum


class Discipline(enum.StrEnum):
    RADIATION_ONCOLOGY = "radiation_oncology"
    ORTHOPAEDICS = "orthopaedics"
    INTERVENTIONAL_RADIOLOGY = "interventional_radiology"
    MEDICAL_ONCOLOGY = "medical_oncology"
    RADIOLOGY = "radiology"
    PATHOLOGY = "pathology"
    PALLIATIVE_CARE = "palliative_care"
    NURSING = "nursing"
    OTHER = "other"

    @property
    def label(self) -> str:
        return DISCIPLINE_LABELS[self]


DISCIPLINE_LABELS = {
    Discipline.RADIATION_ONCOLOGY: "Radiation oncology",
    Discipline.ORTHOPAEDICS: "Orthopaedics",
    Discipline.INTERVENTIONAL_RADIOLOGY: "Interventional radiology",
    Discipline.MEDICAL_ONCOLOGY: "Medical oncology",
    Discipline.RADIOLOGY: "Radiology",
    Discipline.PATHOLOGY: "Pathology",
    Discipline.PALLIATIVE_CARE: "Palliative care",
    Discipline.NURSING: "Nursing",
    Discipline.OTHER: "Other",
}


class Role(enum.StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    SPECIALIST = "specialist"
    CLINICIAN = "clinician"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class User(UserMixin, TimestampMixin, Base):
    """A person who signs in. Never deleted: deactivated instead."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-case; unique, so sign-in is case-insensitive.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    discipline: Mapped[Discipline] = mapped_column(str_enum(Discipline, "discipline"))
    #: Argon2id hash (argon2-cffi); never the password itself.
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    #: IANA zone used to show times in e-mails and pages for this person.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    last_login_at: Mapped[datetime | None]
    #: Part of every session and remember-me cookie (``get_id``); raising it ends them
    #: all at once: sign-out, a password change, deactivation, "sign out everywhere".
    session_generation: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))

    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lower"),)

    @property
    def roles(self) -> set[Role]:
        return {row.role for row in self.role_rows}

    def has_role(self, *roles: Role) -> bool:
        """Return True if the user holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    def get_id(self) -> str:
        """Return the Flask-Login id: ``"<id>:<session generation>:<signed in at>"``.

        The session and the remember-me cookie carry it; ``mdt.auth.sessions``
        refuses one whose generation is not the user's current one. The time of
        the last sign-in (epoch seconds) makes each sign-in's cookie different and
        lets the server, not the browser, bound how long a remember-me cookie works.
        """
        signed_in = int(self.last_login_at.timestamp()) if self.last_login_at else 0
        return f"{self.id}:{self.session_generation}:{signed_in}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserRole(Base):
    """One role held by one user (a person may hold several)."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"), primary_key=True)

    user: Mapped[User] = relationship(back_populates="role_rows")


class ThrottleCounter(Base):
    """Attempts counted under one key in a time window (``mdt.auth.throttle``)."""

    __tablename__ = "throttle_counters"

    #: What is counted: ``login:<SHA-256 of the address>``, ``patient-lookup:<user id>``.
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    #: Attempts counted since ``window_started_at``.
    hits: Mapped[int]
    window_started_at: Mapped[datetime]
