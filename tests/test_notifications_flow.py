"""Through the other features' services: their changes write the right rows, and the e-mails
follow."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa

from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus
from mdt.notifications.render import build_email

from .factories import utc

K = NotificationKind
LONDON = ZoneInfo("Europe/London")


def rows(**filters) -> list[Notification]:
    db.session.expire_all()
    query = sa.select(Notification).order_by(Notification.id)
    for name, value in filters.items():
        query = query.where(getattr(Notification, name) == value)
    return list(db.session.scalars(query))


def _event(msg):
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    cal = icalendar.Calendar.from_ical(part.get_content())
    return cal, cal.walk("VEVENT")[0]


def test_london_series_across_october_change(make, frozen_clock):
    """Generated weekly meetings keep 14:00 local; reminders stay at the local hour."""
    frozen_clock(utc(2026, 10, 12, 9, 0))
    coordinator = make.coordinator()
    series = meetings.create_series(name="Spine MDT", weekday=3, start_time=time(14, 0),
                                    time_zone="Europe/London", duration_minutes=60,
                                    location="Room 1", cutoff_hours=24, actor=None)
    db.session.commit()
    by_date = {m.occurrence_date: m for m in series.meetings}
    before, after = by_date[date(2026, 10, 22)], by_date[date(2026, 10, 29)]
    person = make.specialist(time_zone="Europe/London")
    for meeting in (before, after):
        meetings.invite(meeting, person, actor=None)
    db.session.commit()
    for meeting in (before, after):
        reminders = rows(kind=K.MEETING_REMINDER, meeting_id=meeting.id)
        local = sorted(r.due_at.astimezone(LONDON) for r in reminders)
        day = meeting.occurrence_date
        assert [(d.date(), d.hour) for d in local] == [(day - timedelta(days=1), 14), (day, 13)]
    # The coordinator is told the day before the cutoff, at the local hour.
    closing = next(r for r in rows(kind=K.AGENDA_CLOSING, recipient_id=coordinator.id)
                   if r.meeting_id == after.id)
    assert closing.due_at.astimezone(LONDON) == datetime(2026, 10, 27, 14, 0, tzinfo=LONDON)
    # The e-mail shows GMT after the change and BST before it.
    frozen_clock(utc(2026, 10, 21, 13, 0))
    [reminder] = [r for r in rows(kind=K.MEETING_REMINDER, meeting_id=after.id)
                  if r.payload["offset_minutes"] == 1440]
    assert "Thu 29 Oct 2026, 14:00 GMT (Europe/London)" in build_email(reminder)["Subject"]
    [early] = [r for r in rows(kind=K.MEETING_REMINDER, meeting_id=before.id)
               if r.payload["offset_minutes"] == 1440]
    assert "Thu 22 Oct 2026, 14:00 BST (Europe/London)" in build_email(early)["Subject"]


def test_invite_reschedule_cancel_through_meeting_services(make, frozen_clock):
    frozen_clock(utc(2026, 11, 30, 9, 0))
    meeting = make.meeting(starts_at=utc(2026, 12, 10, 6, 0))
    person = make.specialist()
    meetings.invite(meeting, person, actor=None)
    meetings.invite(meeting, person, actor=None)  # already invited: nothing more
    db.session.commit()
    [invitation] = rows(kind=K.INVITATION)
    cal, event = _event(build_email(invitation))
    assert (str(cal["METHOD"]), int(event["SEQUENCE"])) == ("REQUEST", 0)
    invitation.status = NotificationStatus.SENT
    db.session.commit()

    meetings.update_meeting(meeting, expected_version=meeting.version,
                            starts_at=utc(2026, 12, 10, 8, 0), duration_minutes=90,
                            location="Room 3", video_url=None, chair_id=None, actor=None)
    db.session.commit()
    update = rows(kind=K.INVITATION, status=NotificationStatus.PENDING)[0]
    cal, event = _event(build_email(update))
    assert int(event["SEQUENCE"]) == 1 and event.decoded("DTSTART") == utc(2026, 12, 10, 8, 0)
    assert str(event["UID"]) == f"meeting-{meeting.id}@mdt.test"
    assert {r.due_at for r in rows(kind=K.MEETING_REMINDER)} == {
        utc(2026, 12, 9, 8, 0), utc(2026, 12, 10, 7, 0)}

    meetings.cancel_meeting(meeting, reason="Bank holiday", expected_version=meeting.version,
                            actor=None)
    db.session.commit()
    assert all(r.status == NotificationStatus.CANCELLED for r in rows(kind=K.MEETING_REMINDER))
    cancel = next(r for r in rows(status=NotificationStatus.PENDING)
                  if r.payload.get("method") == "CANCEL")
    cal, event = _event(build_email(cancel))
    assert str(cal["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 2


def test_remove_attendee_through_meeting_services(make, frozen_clock):
    frozen_clock(utc(2026, 11, 30, 9, 0))
    meeting = make.meeting(starts_at=utc(2026, 12, 10, 6, 0))
    person = make.specialist()
    attendance = meetings.invite(meeting, person, actor=None)
    db.session.commit()
    rows(kind=K.INVITATION)[0].status = NotificationStatus.SENT  # the worker sent it
    db.session.commit()
    meetings.remove_attendee(attendance, actor=None)
    db.session.commit()
    pending = rows(status=NotificationStatus.PENDING)
    assert [r.payload["method"] for r in pending] == ["CANCEL"]
    msg = build_email(pending[0])
    assert msg["Subject"].startswith("Removed from: ")
    assert str(_event(msg)[0]["METHOD"]) == "CANCEL"


def _update_place(meeting, location, video_url=None):
    meetings.update_meeting(meeting, expected_version=meeting.version, starts_at=meeting.starts_at,
                            duration_minutes=meeting.duration_minutes, location=location,
                            video_url=video_url, chair_id=None, actor=None)
    db.session.commit()


def test_changing_only_the_place_or_the_link_sends_the_update_with_its_calendar(
        make, frozen_clock):
    frozen_clock(utc(2026, 11, 30, 9, 0))
    meeting = make.meeting(starts_at=utc(2026, 12, 10, 6, 0), location="Room 3")
    person = make.specialist()
    meetings.invite(meeting, person, actor=None)
    db.session.commit()
    rows(kind=K.INVITATION)[0].status = NotificationStatus.SENT
    db.session.commit()
    _update_place(meeting, "Room 9")
    [update] = rows(kind=K.INVITATION, status=NotificationStatus.PENDING)
    message = build_email(update)
    assert message["Subject"].startswith("Updated: ")
    cal, event = _event(message)
    assert (str(cal["METHOD"]), str(event["LOCATION"]), int(event["SEQUENCE"])) == (
        "REQUEST", "Room 9", 1)
    assert "Where: Room 9" in message.get_body(("plain",)).get_content()
    update.status = NotificationStatus.SENT
    db.session.commit()
    _update_place(meeting, "Room 9", video_url="https://video.example/mdt-bone")
    [link] = rows(kind=K.INVITATION, status=NotificationStatus.PENDING)
    _, event = _event(build_email(link))
    assert int(event["SEQUENCE"]) == 2
    assert "Video: https://video.example/mdt-bone" in str(event["DESCRIPTION"])


def test_a_cancel_whose_invitation_failed_meanwhile_is_not_sent(make, frozen_clock):
    frozen_clock(utc(2026, 11, 30, 9, 0))
    meeting = make.meeting(starts_at=utc(2026, 12, 10, 6, 0))
    person = make.specialist()
    meetings.invite(meeting, person, actor=None)
    db.session.commit()
    [invitation] = rows(kind=K.INVITATION)
    invitation.status = NotificationStatus.SENDING  # on its way when the meeting is cancelled
    db.session.commit()
    meetings.cancel_meeting(meeting, reason="Bank holiday", expected_version=meeting.version,
                            actor=None)
    db.session.commit()
    cancel = next(r for r in rows(status=NotificationStatus.PENDING)
                  if r.payload.get("method") == "CANCEL")
    assert build_email(cancel) is not None
    invitation.status = NotificationStatus.FAILED  # the server refused it after all
    db.session.commit()
    assert build_email(cancel) is None  # nothing reached the calendar: nothing to cancel
