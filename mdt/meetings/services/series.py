"""Meeting series: their settings and the weekly meetings they generate."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from mdt import clock
from mdt.audit import services as audit
from mdt.auth.models import Discipline, User
from mdt.db import get_or_404
from mdt.errors import ConflictError, InvalidError
from mdt.extensions import db
from mdt.meetings.models import Meeting, MeetingSeries
from mdt.meetings.services.meetings import check_active_user
from mdt.notifications import services as notify
from mdt.timezones import local_now, local_to_utc, zone

SERIES_FIELDS = ("name", "weekday", "start_time", "time_zone", "duration_minutes", "location",
                 "video_url", "default_chair_id", "core_disciplines", "cutoff_hours",
                 "reminder_offsets_minutes")


def list_series() -> list[MeetingSeries]:
    """Return every series by name, with its default chair."""
    return list(db.session.scalars(
        select(MeetingSeries).options(joinedload(MeetingSeries.default_chair))
        .order_by(func.lower(MeetingSeries.name), MeetingSeries.id)))


def get_series(series_id: int) -> MeetingSeries:
    """Return a series or raise NotFoundError."""
    return get_or_404(MeetingSeries, series_id, "No such meeting series.")


def _clean_series_values(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(SERIES_FIELDS)
    if unknown:
        raise TypeError(f"unknown series fields: {sorted(unknown)}")
    out = dict(values)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"]:
            raise InvalidError("A series needs a name.", fields={"name": "Required."})
    if "time_zone" in out:
        zone(out["time_zone"])
    if "weekday" in out and not 0 <= int(out["weekday"]) <= 6:
        raise InvalidError("Weekday must be Monday to Sunday.", fields={"weekday": "Choose a day."})
    if "core_disciplines" in out:
        out["core_disciplines"] = [Discipline(d).value for d in out["core_disciplines"]]
    if "reminder_offsets_minutes" in out:
        offsets = sorted({int(m) for m in out["reminder_offsets_minutes"]}, reverse=True)
        if any(m <= 0 for m in offsets):
            raise InvalidError("Reminder offsets must be positive minutes.",
                               fields={"reminder_offsets_minutes": "Positive minutes only."})
        out["reminder_offsets_minutes"] = offsets
    check_active_user(out.get("default_chair_id"), "default_chair_id",
                      "The chair must be an active user.")
    for key in ("location", "video_url"):
        if key in out:
            out[key] = (out[key] or "").strip() or None
    return out


def create_series(*, actor: User | None, **values: Any) -> MeetingSeries:
    """Create a meeting series and generate its upcoming meetings."""
    values = _clean_series_values(values)
    series = MeetingSeries(**values)
    db.session.add(series)
    db.session.flush()
    audit.record("series.created", f"Meeting series {series.id} created", actor=actor,
                 obj=series, data={k: values.get(k) for k in SERIES_FIELDS if k in values})
    generate_meetings(series)
    return series


def update_series(series: MeetingSeries, *, actor: User | None,
                  **values: Any) -> dict[str, list[Any]]:
    """Change a series; meetings already generated keep their own time and place."""
    diff = audit.changes(series, _clean_series_values(values))
    if diff:
        db.session.flush()
        audit.record("series.changed", f"Meeting series {series.id} changed", actor=actor,
                     obj=series, data=diff)
    return diff


def occurrence_dates(series: MeetingSeries, weeks: int) -> list[date]:
    """Return the series' local dates from today for ``weeks`` weeks."""
    today = local_now(series.time_zone).date()
    first = today + timedelta(days=(series.weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range(weeks)]


def _existing_occurrences(series: MeetingSeries, dates: list[date]) -> set[date]:
    return set(db.session.scalars(
        select(Meeting.occurrence_date).where(Meeting.series_id == series.id,
                                              Meeting.occurrence_date.in_(dates))))


def generate_meetings(series: MeetingSeries, weeks: int = 8) -> list[Meeting]:
    """Create the series' missing upcoming meetings (idempotent); return the new ones.

    No audit entry per meeting: each follows from the series, whose own
    entries say who set it up and when.
    """
    if not series.is_active:
        return []
    dates = occurrence_dates(series, weeks)
    existing = _existing_occurrences(series, dates)
    created = []
    for day in dates:
        starts_at = local_to_utc(day, series.start_time, series.time_zone)
        if day in existing or starts_at <= clock.now():
            continue
        meeting = Meeting(series=series, occurrence_date=day, starts_at=starts_at,
                          duration_minutes=series.duration_minutes, time_zone=series.time_zone,
                          location=series.location, video_url=series.video_url,
                          chair_id=series.default_chair_id)
        db.session.add(meeting)
        created.append(meeting)
    try:
        db.session.flush()
    except IntegrityError as exc:  # uq series+occurrence: another request generated them
        raise ConflictError("These meetings were being scheduled by someone else at the same "
                            "moment. Reload the page: they are there.") from exc
    for meeting in created:
        notify.on_meeting_created(meeting)
    return created
