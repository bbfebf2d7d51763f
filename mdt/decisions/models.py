"""Proposals, opinions, the signed consensus, its actions and amendments."""
from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mdt.auth.models import Discipline, User
from mdt.db import Base, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from mdt.meetings.models import AgendaItem


class Modality(enum.StrEnum):
    SBRT = "sbrt"
    CONVENTIONAL_RT = "conventional_rt"
    CEMENTOPLASTY = "cementoplasty"
    SURGERY = "surgery"
    DENOSUMAB = "denosumab"
    ZOLEDRONIC_ACID = "zoledronic_acid"
    SYSTEMIC_THERAPY = "systemic_therapy"
    BEST_SUPPORTIVE_CARE = "best_supportive_care"
    CLINICAL_TRIAL = "clinical_trial"
    FURTHER_INVESTIGATION = "further_investigation"
    OTHER = "other"

    @property
    def label(self) -> str:
        return MODALITY_LABELS[self]


MODALITY_LABELS = {
    Modality.SBRT: "Stereotactic body radiotherapy (SBRT)",
    Modality.CONVENTIONAL_RT: "Conventional palliative radiotherapy",
    Modality.CEMENTOPLASTY: "Percutaneous cementoplasty / vertebroplasty",
    Modality.SURGERY: "Surgical stabilisation or decompression",
    Modality.DENOSUMAB: "Denosumab",
    Modality.ZOLEDRONIC_ACID: "Zoledronic acid (bisphosphonate)",
    Modality.SYSTEMIC_THERAPY: "Continue or change systemic therapy",
    Modality.BEST_SUPPORTIVE_CARE: "Best supportive care",
    Modality.CLINICAL_TRIAL: "Clinical-trial referral",
    Modality.FURTHER_INVESTIGATION: "Further investigation",
    Modality.OTHER: "Other",
}


class Proposal(TimestampMixin, Base):
    """A treatment option a specialist puts to the team for an agenda item."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda_item_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agenda_items.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    modality: Mapped[Modality] = mapped_column(str_enum(Modality, "modality"))
    details: Mapped[str | None] = mapped_column(sa.Text)
    rationale: Mapped[str | None] = mapped_column(sa.Text)
    #: Proposals sharing a label on one item are alternatives: the team picks one
    #: (e.g. denosumab *or* zoledronic acid). NULL: stands alone.
    alternative_group: Mapped[str | None] = mapped_column(sa.String(40))
    is_withdrawn: Mapped[bool] = mapped_column(default=False)
    #: Optimistic lock: an edit based on an old version is refused (409).
    version: Mapped[int] = mapped_column(default=1)

    agenda_item: Mapped[AgendaItem] = relationship(back_populates="proposals")
    author: Mapped[User] = relationship()
    opinions: Mapped[list[Opinion]] = relationship(
        back_populates="proposal", order_by="Opinion.id"
    )

    __mapper_args__ = {"version_id_col": version}


class Stance(enum.StrEnum):
    SUPPORT = "support"
    OBJECT = "object"
    ABSTAIN = "abstain"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Opinion(TimestampMixin, Base):
    """One specialist's stance on one proposal (at most one each)."""

    __tablename__ = "opinions"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(
        sa.ForeignKey("proposals.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: The giver's discipline when the opinion was given (for the tally).
    discipline: Mapped[Discipline] = mapped_column(str_enum(Discipline, "opinion_discipline"))
    stance: Mapped[Stance] = mapped_column(str_enum(Stance, "stance"))
    comment: Mapped[str | None] = mapped_column(sa.Text)

    proposal: Mapped[Proposal] = relationship(back_populates="opinions")
    user: Mapped[User] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("proposal_id", "user_id"),
        sa.CheckConstraint(
            "stance <> 'object' OR length(trim(coalesce(comment, ''))) > 0",
            name="objection_has_reason",
        ),
    )


class Outcome(enum.StrEnum):
    AGREED = "agreed"
    DEFERRED = "deferred"
    NO_CONSENSUS = "no_consensus"

    @property
    def label(self) -> str:
        return {"agreed": "Recommendation agreed", "deferred": "Deferred",
                "no_consensus": "No consensus"}[self.value]


class Intent(enum.StrEnum):
    CURATIVE = "curative"
    PALLIATIVE = "palliative"
    NOT_KNOWN = "not_known"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


consensus_proposals = sa.Table(
    "consensus_proposals",
    Base.metadata,
    sa.Column("consensus_id", sa.ForeignKey("consensuses.id", ondelete="RESTRICT"),
              primary_key=True),
    sa.Column("proposal_id", sa.ForeignKey("proposals.id", ondelete="RESTRICT"),
              primary_key=True),
)


class Consensus(Base):
    """The chair's signed record of an item's outcome. Immutable once written.

    There is no draft state: the row exists only once signed, and the
    service layer refuses every change to it (corrections are ``Amendment``s).
    """

    __tablename__ = "consensuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Unique: an item's consensus is signed once.
    agenda_item_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agenda_items.id", ondelete="RESTRICT"), unique=True
    )
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, "outcome"))
    recommendation: Mapped[str | None] = mapped_column(sa.Text)
    intent: Mapped[Intent] = mapped_column(str_enum(Intent, "intent"), default=Intent.NOT_KNOWN)
    #: Why the item was deferred or reached no consensus.
    reason: Mapped[str | None] = mapped_column(sa.Text)
    responsible_clinician_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    dissent: Mapped[str | None] = mapped_column(sa.Text)
    #: Who was present at signing: ``[{"user_id", "name", "discipline"}]``.
    attendees_snapshot: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    was_quorate: Mapped[bool]
    #: Required when signing a meeting that is not quorate.
    non_quorate_reason: Mapped[str | None] = mapped_column(sa.Text)
    signed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: The signer's name and discipline at signing: the record shows these, not
    #: the user as an admin may have renamed them since.
    signed_by_name: Mapped[str] = mapped_column(sa.String(200))
    signed_by_discipline: Mapped[Discipline] = mapped_column(
        str_enum(Discipline, "signer_discipline"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    agenda_item: Mapped[AgendaItem] = relationship(back_populates="consensus")
    responsible_clinician: Mapped[User | None] = relationship(
        foreign_keys=[responsible_clinician_id]
    )
    signed_by: Mapped[User] = relationship(foreign_keys=[signed_by_id])
    adopted_proposals: Mapped[list[Proposal]] = relationship(secondary=consensus_proposals)
    actions: Mapped[list[ConsensusAction]] = relationship(
        back_populates="consensus", order_by="ConsensusAction.id"
    )
    amendments: Mapped[list[Amendment]] = relationship(
        back_populates="consensus", order_by="Amendment.created_at"
    )

    __table_args__ = (
        sa.CheckConstraint(
            "outcome <> 'agreed' OR length(trim(coalesce(recommendation, ''))) > 0",
            name="agreed_has_recommendation",
        ),
        sa.CheckConstraint(
            "outcome = 'agreed' OR length(trim(coalesce(reason, ''))) > 0",
            name="not_agreed_has_reason",
        ),
        sa.CheckConstraint(
            "was_quorate OR length(trim(coalesce(non_quorate_reason, ''))) > 0",
            name="non_quorate_has_reason",
        ),
    )


class ConsensusAction(Base):
    """A follow-up action recorded in the consensus: what, who, by when."""

    __tablename__ = "consensus_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    consensus_id: Mapped[int] = mapped_column(
        sa.ForeignKey("consensuses.id", ondelete="RESTRICT"), index=True
    )
    description: Mapped[str] = mapped_column(sa.String(500))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    due_on: Mapped[date | None]

    consensus: Mapped[Consensus] = relationship(back_populates="actions")
    owner: Mapped[User | None] = relationship()


class Amendment(Base):
    """A correction to a signed consensus, shown beneath it. Append-only."""

    __tablename__ = "amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    consensus_id: Mapped[int] = mapped_column(
        sa.ForeignKey("consensuses.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Why the record is corrected.
    reason: Mapped[str] = mapped_column(sa.Text)
    #: What the correction says (the corrected text, or what to read instead).
    correction: Mapped[str] = mapped_column(sa.Text)

    consensus: Mapped[Consensus] = relationship(back_populates="amendments")
    author: Mapped[User] = relationship()

    __table_args__ = (
        sa.CheckConstraint("length(trim(reason)) > 0", name="reason_required"),
        sa.CheckConstraint("length(trim(correction)) > 0", name="correction_required"),
    )
