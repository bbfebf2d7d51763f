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
