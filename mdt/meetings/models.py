"""Meeting series, meetings, agenda items and attendance."""
from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mdt import clock
from mdt.auth.models import Discipline, User
from mdt.db import Base, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from mdt.cases.models import Case
    from mdt.decisions.models import Consensus, Proposal

DEFAULT_CORE_DISCIPLINES = [
    Discipline.RADIATION_ONCOLOGY.value,
    Discipline.ORTHOPAEDICS.value,
    Discipline.INTERVENTIONAL_RADIOLOGY.value,
    Discipline.MEDICAL_ONCOLOGY.value,
]
#: Minutes before the meeting at which attendees are reminded (24 h and 1 h).
DEFAULT_REMINDER_OFFSETS = [24 * 60, 60]


class MeetingSeries(TimestampMixin, Base):
    """A recurring meeting, e.g. the weekly "Bone metastasis MDT"."""

    __tablename__ = "meeting_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: 0 = Monday … 6 = Sunday, as ``date.weekday()``.
    weekday: Mapped[int]
    #: Local wall-clock start time in ``time_zone``; kept across DST changes.
    start_time: Mapped[time]
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")
    duration_minutes: Mapped[int] = mapped_column(default=90)
    location: Mapped[str | None] = mapped_column(sa.String(300))
    video_url: Mapped[str | None] = mapped_column(sa.String(500))
    default_chair_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT")
    )
    #: Disciplines that must all be present for a meeting to be quorate.
    core_disciplines: Mapped[list[str]] = mapped_column(
        sa.JSON, default=lambda: list(DEFAULT_CORE_DISCIPLINES)
    )
    #: Cases may be added by non-coordinators until this many hours before the start.
    cutoff_hours: Mapped[int] = mapped_column(default=24)
    reminder_offsets_minutes: Mapped[list[int]] = mapped_column(
        sa.JSON, default=lambda: list(DEFAULT_REMINDER_OFFSETS)
    )
    is_active: Mapped[bool] = mapped_column(default=True)

    default_chair: Mapped[User | None] = relationship()
    meetings: Mapped[list[Meeting]] = relationship(
        back_populates="series", order_by="Meeting.starts_at"
    )

    __table_args__ = (
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("duration_minutes > 0", name="duration_positive"),
        sa.CheckConstraint("cutoff_hours >= 0", name="cutoff_not_negative"),
    )


class MeetingStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Meeting(TimestampMixin, Base):
    """One occurrence of a series. Times are stored in UTC."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(sa.ForeignKey("meeting_series.id", ondelete="RESTRICT"))
    #: The series occurrence (local date) this meeting stands for; with the
    #: series, unique, so generating upcoming meetings twice creates nothing twice.
    occurrence_date: Mapped[date]
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int]
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    location: Mapped[str | None] = mapped_column(sa.String(300))
    video_url: Mapped[str | None] = mapped_column(sa.String(500))
    chair_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[MeetingStatus] = mapped_column(
        str_enum(MeetingStatus, "meeting_status"), default=MeetingStatus.SCHEDULED
    )
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Bumped on every reschedule; the calendar SEQUENCE for invitations.
    sequence: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    series: Mapped[MeetingSeries] = relationship(back_populates="meetings")
    chair: Mapped[User | None] = relationship()
    items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting", order_by="AgendaItem.position",
        foreign_keys="AgendaItem.meeting_id",
    )
    attendances: Mapped[list[Attendance]] = relationship(back_populates="meeting")
    corrections: Mapped[list[MeetingCorrection]] = relationship(
        back_populates="meeting", order_by="MeetingCorrection.id"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        sa.UniqueConstraint("series_id", "occurrence_date"),
        sa.CheckConstraint("duration_minutes > 0", name="duration_positive"),
    )

    @property
    def ends_at(self) -> datetime:
        """When the meeting is planned to end."""
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    @property
    def is_cancelled(self) -> bool:
        """Whether the meeting was cancelled (it keeps its agenda, for carrying over)."""
        return self.status == MeetingStatus.CANCELLED

    # The three facts below are the rules' one definition; the meetings
    # services and the notifications (which the services call) both use them.

    @property
    def cutoff_at(self) -> datetime:
        """When the agenda closes: after this only coordinators add cases (late additions)."""
        return self.starts_at - timedelta(hours=self.series.cutoff_hours)

    @property
    def has_started(self) -> bool:
        """Whether the meeting's start time has passed."""
        return clock.now() >= self.starts_at

    @property
    def is_upcoming(self) -> bool:
        """Whether the meeting is scheduled (not cancelled) and has not started."""
        return not self.is_cancelled and not self.has_started


class MeetingCorrection(Base):
    """A recorded correction to a meeting at which decisions were signed. Append-only.

    Once a consensus is signed at a meeting, its date, time, chair, place and
    status belong to that record; they change only through a correction
    (``meetings.services.correct_meeting``), shown on the meeting page and the
    consensus report. Database triggers refuse any UPDATE or DELETE of a row.
    """

    __tablename__ = "meeting_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Why the record is corrected.
    reason: Mapped[str] = mapped_column(sa.Text)
    #: What changed, as the record showed it: ``[{"field", "label", "from", "to"}]``.
    changes: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)

    meeting: Mapped[Meeting] = relationship(back_populates="corrections")
    author: Mapped[User] = relationship()

    __table_args__ = (
        sa.CheckConstraint("length(trim(reason)) > 0", name="reason_required"),
    )


class Triage(enum.StrEnum):
    FOR_DISCUSSION = "for_discussion"
    #: NHS England streamlining: listed on the agenda, not discussed.
    STANDARD_OF_CARE = "standard_of_care"

    @property
    def label(self) -> str:
        return {"for_discussion": "For discussion",
                "standard_of_care": "Standard of care — listed, not discussed"}[self.value]


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    DISCUSSED = "discussed"
    DEFERRED = "deferred"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class AgendaItem(TimestampMixin, Base):
    """A case on a meeting's agenda."""

    __tablename__ = "agenda_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="RESTRICT"), index=True
    )
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int]
    minutes_allotted: Mapped[int] = mapped_column(default=10)
    presenter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    triage: Mapped[Triage | None] = mapped_column(str_enum(Triage, "triage"))
    status: Mapped[ItemStatus] = mapped_column(
        str_enum(ItemStatus, "item_status"), default=ItemStatus.PENDING
    )
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Added after the submission cutoff (only coordinators can).
    is_late: Mapped[bool] = mapped_column(default=False)
    added_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: The item this one was carried over from, and the one it was carried to.
    carried_from_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("agenda_items.id", ondelete="RESTRICT")
    )
    carried_to_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("agenda_items.id", ondelete="RESTRICT")
    )
    version: Mapped[int] = mapped_column(default=1)

    meeting: Mapped[Meeting] = relationship(back_populates="items", foreign_keys=[meeting_id])
    case: Mapped[Case] = relationship()
    presenter: Mapped[User | None] = relationship(foreign_keys=[presenter_id])
    added_by: Mapped[User | None] = relationship(foreign_keys=[added_by_id])
    proposals: Mapped[list[Proposal]] = relationship(
        back_populates="agenda_item", order_by="Proposal.id"
    )
    consensus: Mapped[Consensus | None] = relationship(back_populates="agenda_item")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "case_id"),
        #: One item per place on the agenda: renumbering goes through temporary
        #: negative positions (``meetings.services.ordering.renumber``).
        sa.UniqueConstraint("meeting_id", "position"),
        sa.CheckConstraint("minutes_allotted > 0", name="minutes_positive"),
        sa.CheckConstraint(
            "status <> 'deferred' OR status_reason IS NOT NULL", name="deferred_has_reason"
        ),
    )


class Response(enum.StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    APOLOGIES = "apologies"


class Presence(enum.StrEnum):
    UNKNOWN = "unknown"
    PRESENT = "present"
    ABSENT = "absent"


class Attendance(TimestampMixin, Base):
    """A person invited to a meeting: their answer, and whether they came."""

    __tablename__ = "attendances"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(sa.ForeignKey("meetings.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    response: Mapped[Response] = mapped_column(
        str_enum(Response, "attendance_response"), default=Response.INVITED
    )
    presence: Mapped[Presence] = mapped_column(
        str_enum(Presence, "attendance_presence"), default=Presence.UNKNOWN
    )

    meeting: Mapped[Meeting] = relationship(back_populates="attendances")
    user: Mapped[User] = relationship()

    __table_args__ = (sa.UniqueConstraint("meeting_id", "user_id"),)
