"""Patients, cases and their imaging and pathology references.

Later issues add structured bone-lesion sections and computed scores as
their own tables keyed by ``case_id`` (one case, many lesions; one lesion,
many score results with source and version), so the case itself does not
need to be reshaped.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mdt.auth.models import User
from mdt.db import Base, TimestampMixin, str_enum


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Patient(TimestampMixin, Base):
    """A person with cancer. Never deleted; may have several cases over time."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    date_of_birth: Mapped[date]
    sex: Mapped[Sex] = mapped_column(str_enum(Sex, "sex"))

    cases: Mapped[list[Case]] = relationship(back_populates="patient", order_by="Case.id")

    @property
    def initials(self) -> str:
        return "".join(part[0].upper() for part in self.name.split() if part)


class MarkerStatus(enum.StrEnum):
    NOT_TESTED = "not_tested"
    PENDING = "pending"
    NEGATIVE = "negative"
    POSITIVE = "positive"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


#: ECOG performance status grades with their standard one-line meanings
#: (Oken MM et al., Am J Clin Oncol 1982;5:649, as published by ECOG-ACRIN).
ECOG_GRADES: dict[int, str] = {
    0: "Fully active; no restriction of pre-disease activity",
    1: "Restricted in strenuous activity; ambulatory, able to do light or sedentary work",
    2: ("Ambulatory and capable of all self-care; unable to work; up and about more than 50% "
        "of waking hours"),
    3: "Capable of only limited self-care; in bed or chair more than 50% of waking hours",
    4: "Completely disabled; no self-care; totally confined to bed or chair",
}


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Case(TimestampMixin, Base):
    """A question about one patient, referred to the MDT."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        sa.ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    referring_clinician_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[CaseStatus] = mapped_column(
        str_enum(CaseStatus, "case_status"), default=CaseStatus.OPEN
    )
    # Diagnosis.
    primary_site: Mapped[str] = mapped_column(sa.String(120), default="Lung")
    histology: Mapped[str | None] = mapped_column(sa.String(200))
    stage: Mapped[str | None] = mapped_column(sa.String(60))
    egfr_status: Mapped[MarkerStatus] = mapped_column(
        str_enum(MarkerStatus, "egfr_status"), default=MarkerStatus.NOT_TESTED
    )
    #: e.g. "exon 19 deletion", "L858R".
    egfr_variant: Mapped[str | None] = mapped_column(sa.String(100))
    alk_status: Mapped[MarkerStatus] = mapped_column(
        str_enum(MarkerStatus, "alk_status"), default=MarkerStatus.NOT_TESTED
    )
    ros1_status: Mapped[MarkerStatus] = mapped_column(
        str_enum(MarkerStatus, "ros1_status"), default=MarkerStatus.NOT_TESTED
    )
    kras_status: Mapped[MarkerStatus] = mapped_column(
        str_enum(MarkerStatus, "kras_status"), default=MarkerStatus.NOT_TESTED
    )
    #: e.g. "G12C".
    kras_variant: Mapped[str | None] = mapped_column(sa.String(100))
    #: PD-L1 tumour proportion score, percent; NULL when not tested.
    pdl1_tps: Mapped[int | None]
    #: ECOG performance status 0–4; NULL when not recorded.
    ecog: Mapped[int | None]
    systemic_therapy: Mapped[str | None] = mapped_column(sa.String(300))
    therapy_line: Mapped[int | None]
    #: The question put to the MDT (required).
    question: Mapped[str] = mapped_column(sa.Text)
    clinical_summary: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(default=1)

    patient: Mapped[Patient] = relationship(back_populates="cases")
    referring_clinician: Mapped[User] = relationship()
    references: Mapped[list[CaseReference]] = relationship(
        back_populates="case", order_by="CaseReference.performed_on"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        sa.CheckConstraint("ecog IS NULL OR (ecog BETWEEN 0 AND 4)", name="ecog_range"),
        sa.CheckConstraint("pdl1_tps IS NULL OR (pdl1_tps BETWEEN 0 AND 100)", name="pdl1_range"),
        sa.CheckConstraint("therapy_line IS NULL OR therapy_line >= 1", name="line_positive"),
        sa.CheckConstraint("length(trim(question)) > 0", name="question_required"),
    )


class ReferenceKind(enum.StrEnum):
    IMAGING = "imaging"
    PATHOLOGY = "pathology"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class CaseReference(TimestampMixin, Base):
    """An imaging study or pathology report the MDT should look at."""

    __tablename__ = "case_references"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[ReferenceKind] = mapped_column(str_enum(ReferenceKind, "reference_kind"))
    accession_number: Mapped[str] = mapped_column(sa.String(64))
    performed_on: Mapped[date]
    description: Mapped[str] = mapped_column(sa.String(500))
    url: Mapped[str | None] = mapped_column(sa.String(500))
    #: Set when the reference was entered by mistake; it stays visible, struck
    #: out, and no longer counts for readiness (clinical records are never deleted).
    retracted_at: Mapped[datetime | None]
    retraction_reason: Mapped[str | None] = mapped_column(sa.String(500))

    case: Mapped[Case] = relationship(back_populates="references")

    __table_args__ = (
        sa.CheckConstraint("retracted_at IS NULL OR retraction_reason IS NOT NULL",
                           name="retraction_has_reason"),
    )

    @property
    def is_retracted(self) -> bool:
        return self.retracted_at is not None
