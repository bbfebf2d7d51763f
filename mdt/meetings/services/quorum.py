"""Quorum: whether every core discipline of the series has someone present."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from mdt.auth.models import Discipline
from mdt.extensions import db
from mdt.meetings.models import Attendance, Meeting, Presence


@dataclass(frozen=True)
class Quorum:
    """Who was present at a moment, and which core disciplines were (not) among them."""

    is_quorate: bool
    present_disciplines: list[Discipline]
    missing_disciplines: list[Discipline]
    present_attendees: list[Attendance]


def quorum(meeting: Meeting) -> Quorum:
    """Quorate when every core discipline of the series has someone marked present."""
    core = [Discipline(d) for d in meeting.series.core_disciplines]
    # One query with the people, whatever the number of attendees.
    present = list(db.session.scalars(
        select(Attendance).where(Attendance.meeting_id == meeting.id,
                                 Attendance.presence == Presence.PRESENT)
        .options(joinedload(Attendance.user)).order_by(Attendance.id)))
    seen = {a.user.discipline for a in present}
    present_core = [d for d in core if d in seen]
    missing = [d for d in core if d not in seen]
    return Quorum(is_quorate=bool(present) and not missing, present_disciplines=present_core,
                  missing_disciplines=missing, present_attendees=present)
