"""Corrections to the record of a meeting at which decisions were signed.

Once a consensus is signed at a meeting, the meeting's date, time, duration,
place, chair and status are part of that signed record: ``update_meeting``
and ``cancel_meeting`` refuse to change them (``check_meeting_editable``).
A mistake in them is corrected here instead, like an amendment: who, when,
why, and what changed from what to what, kept append-only in
``meeting_corrections`` and shown on the meeting page and on the report of
every case decided at the meeting.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.db import flush_or_conflict
from mdt.errors import InvalidError
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, Meeting, MeetingCorrection
from mdt.meetings.services.meetings import (
    check_active_user,
    check_duration,
    check_version,
    has_signed_items,
    lock_meeting,
    same_start,
)
from mdt.timezones import to_local

#: The fields a correction may change, with the label it is shown under.
CORRECTABLE = {"starts_at": "Date and time", "duration_minutes": "Duration",
               "location": "Place", "video_url": "Video link", "chair_id": "Chair"}


def first_signed_at(meeting: Meeting) -> datetime | None:
    """Return when the first consensus of the meeting was signed (None if none was)."""
    from mdt.decisions.models import Consensus

    return db.session.scalar(
        select(func.min(Consensus.signed_at)).join(AgendaItem)
        .where(AgendaItem.meeting_id == meeting.id))


def correct_meeting(meeting: Meeting, *, actor: User, reason: str | None,
                    expected_version: int | None, starts_at: datetime, duration_minutes: int,
                    location: str | None, video_url: str | None,
                    chair_id: int | None) -> MeetingCorrection:
    """Correct the record of a meeting with signed decisions; keep the reason and the change."""
    lock_meeting(meeting)
    check_version(meeting, expected_version, "meeting")
    if not has_signed_items(meeting):
        raise InvalidError("Nothing is signed at this meeting yet: edit it instead.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidError("The correction was not recorded.",
                           fields={"reason": "Say why the record is corrected."})
    starts_at = same_start(meeting, starts_at)
    _check_values(meeting, starts_at, duration_minutes, chair_id)
    shown_before = {field: _shown(meeting, field) for field in CORRECTABLE}
    diff = audit.changes(meeting, dict(
        starts_at=starts_at, duration_minutes=duration_minutes,
        location=(location or "").strip() or None, video_url=(video_url or "").strip() or None,
        chair_id=chair_id))
    if not diff:
        raise InvalidError("Nothing was corrected: change at least one field, or go back.")
    correction = MeetingCorrection(
        meeting=meeting, author=actor, created_at=clock.now(), reason=reason,
        changes=[{"field": field, "label": CORRECTABLE[field], "from": shown_before[field],
                  "to": _shown(meeting, field)} for field in diff])
    db.session.add(correction)
    flush_or_conflict()
    _audit(meeting, correction, diff, actor)
    return correction


def _check_values(meeting: Meeting, starts_at: datetime, duration_minutes: int,
                  chair_id: int | None) -> None:
    check_duration(duration_minutes)
    check_active_user(chair_id, "chair_id", "The chair must be an active user.")
    signed_at = first_signed_at(meeting)
    if signed_at is not None and starts_at > signed_at:
        when = to_local(signed_at, meeting.time_zone).strftime("%d %b %Y, %H:%M")
        raise InvalidError(
            "The meeting had started when its first decision was signed.",
            fields={"day": f"The first consensus was signed at {when}; the meeting cannot "
                           "have started later than that."})


def _shown(meeting: Meeting, field: str) -> str:
    """Return a field of the meeting as the record shows it (names as they are now)."""
    if field == "starts_at":
        local = to_local(meeting.starts_at, meeting.time_zone)
        return f"{local.strftime('%a %d %b %Y, %H:%M')} {local.tzname()}"
    if field == "duration_minutes":
        return f"{meeting.duration_minutes} minutes"
    if field == "chair_id":
        chair = db.session.get(User, meeting.chair_id) if meeting.chair_id else None
        return f"{chair.name} ({chair.discipline.label})" if chair else "—"
    return getattr(meeting, field) or "—"


def _audit(meeting: Meeting, correction: MeetingCorrection, diff: dict[str, list[Any]],
           actor: User) -> None:
    """One entry for the meeting, and one in the history of each case decided at it."""
    data = {**diff, "reason": correction.reason, "correction_id": correction.id}
    audit.record("meeting.corrected", f"Meeting {meeting.id} record corrected", actor=actor,
                 obj=meeting, data=data)
    for case_id in decided_case_ids(meeting):
        audit.record("meeting.corrected", f"Record of meeting {meeting.id} corrected",
                     actor=actor, obj=correction, case_id=case_id, data=data)


def decided_case_ids(meeting: Meeting) -> list[int]:
    """Return the cases with a consensus signed at ``meeting``."""
    from mdt.decisions.models import Consensus

    return list(db.session.scalars(
        select(AgendaItem.case_id).join(Consensus, Consensus.agenda_item_id == AgendaItem.id)
        .where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.case_id)))
