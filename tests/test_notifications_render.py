"""build_email: subject, recipient, time zone, minimal patient data, links and .ics."""
from __future__ import annotations

from datetime import timedelta

import icalendar
import pytest

from mdt.extensions import db
from mdt.meetings.models import MeetingStatus, Triage
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus
from mdt.notifications.render import build_email, patient_reference

from .factories import utc

NOW = utc(2026, 11, 30, 9, 0)


def _row(kind, recipient, *, meeting=None, case=None, key=None, **payload) -> Notification:
    n = Notification(kind=kind, recipient=recipient, due_at=NOW,
                     dedup_key=key or f"test:{kind}:{recipient.id}:{len(payload)}:{id(payload)}",
                     meeting_id=meeting.id if meeting else None,
                     case_id=case.id if case else None, payload=payload)
    db.session.add(n)
    db.session.commit()
    return n


def _parts(msg):
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


def _calendar(msg):
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert parts, "no text/calendar part"
    return parts, icalendar.Calendar.from_ical(parts[0].get_content())


def _assert_minimal_patient_data(msg, patient):
    raw = msg.as_string()
    text, html = _parts(msg)
    for body in (raw, text, html):
        assert patient.name not in body
        assert patient.hospital_number not in body
        assert patient.date_of_birth.isoformat() not in body
        assert patient.date_of_birth.strftime("%d %b %Y") not in body


@pytest.fixture
def setting(make, frozen_clock):
    frozen_clock(NOW)
    person = make.specialist(name="Ada Radiant", email="ada@example.org",
                             time_zone="Europe/London")
    patient = make.patient(name="Li Wei", hospital_number="H7654123")
    meeting = make.meeting(starts_at=utc(2026, 12, 3, 6, 0),
                           series=make.series(name="Bone metastasis MDT",
                                              time_zone="Asia/Shanghai"))
    item = make.item(meeting=meeting, case=make.case(patient=patient), minutes_allotted=15,
                     triage=Triage.FOR_DISCUSSION)
    make.attendance(meeting, person)
    return person, patient, meeting, item


def test_meeting_reminder_has_agenda_zone_and_link(setting):
    person, patient, meeting, item = setting
    msg = build_email(_row(NotificationKind.MEETING_REMINDER, person, meeting=meeting,
                           offset_minutes=1440))
    assert msg is not None
    assert msg["To"] == "Ada Radiant <ada@example.org>"
    assert msg["From"] == "MDT <mdt@localhost>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].startswith("<mdt.notification.") and msg["Date"]
    # 06:00 UTC is 06:00 GMT in London (the person's zone), not 14:00 Shanghai.
    assert msg["Subject"] == ("Reminder: Bone metastasis MDT, "
                              "Thu 03 Dec 2026, 06:00 GMT (Europe/London)")
    text, html = _parts(msg)
    for body in (text, html):
        assert "starts in 24 hours" in body
        assert f"http://mdt.test/meetings/{meeting.id}" in body
        assert f"Case {item.case_id} · L.W. …123" in body
        assert "For discussion" in body
        assert "mdt" in body
    assert "1. Case" in text and " 15 min " in text
    _assert_minimal_patient_data(msg, patient)


def test_meeting_zone_used_when_person_has_none(setting, make):
    _, _, meeting, _ = setting
    other = make.specialist(time_zone=None)
    make.attendance(meeting, other)
    msg = build_email(_row(NotificationKind.MEETING_REMINDER, other, meeting=meeting,
                           offset_minutes=60))
    assert "14:00 CST (Asia/Shanghai)" in msg["Subject"]
    assert "starts in 1 hour." in _parts(msg)[0]


def test_patient_detail_none_shows_case_number_only(setting, app):
    person, patient, meeting, item = setting
    app.config["EMAIL_PATIENT_DETAIL"] = "none"
    try:
        msg = build_email(_row(NotificationKind.MEETING_REMINDER, person, meeting=meeting,
                               offset_minutes=60))
        assert patient_reference(item.case) == f"Case {item.case_id}"
    finally:
        app.config["EMAIL_PATIENT_DETAIL"] = "initials"
    text, _ = _parts(msg)
    assert f"Case {item.case_id}" in text
    assert "L.W." not in text and "123" not in text.replace(str(item.case_id), "")


def test_invitation_carries_request_calendar(setting):
    person, patient, meeting, _ = setting
    msg = build_email(_row(NotificationKind.INVITATION, person, meeting=meeting,
                           method="REQUEST", sequence=0))
    assert msg["Subject"].startswith("Invitation: Bone metastasis MDT, Thu 03 Dec 2026, 06:00 GMT")
    parts, cal = _calendar(msg)
    assert all(p.get_param("method") == "REQUEST" for p in parts)
    assert any(p.get_filename() == "invite.ics" for p in parts)
    assert str(cal["METHOD"]) == "REQUEST"
    event = cal.walk("VEVENT")[0]
    assert str(event["UID"]) == f"meeting-{meeting.id}@mdt"
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == utc(2026, 12, 3, 6, 0)
    assert event.decoded("DTEND") == utc(2026, 12, 3, 7, 30)
    assert str(event["SUMMARY"]) == "Bone metastasis MDT"
    assert str(event["ORGANIZER"]) == "mailto:mdt@localhost"
    assert str(event["ATTENDEE"]) == "mailto:ada@example.org"
    assert str(event["URL"]) == f"http://mdt.test/meetings/{meeting.id}"
    _assert_minimal_patient_data(msg, patient)
    ics_text = parts[0].get_content()
    assert patient.name not in ics_text and "L.W." not in ics_text


def test_invitation_update_has_higher_sequence(setting):
    person, _, meeting, _ = setting
    meeting.starts_at = utc(2026, 12, 3, 8, 0)
    meeting.sequence = 1
    db.session.commit()
    msg = build_email(_row(NotificationKind.INVITATION, person, meeting=meeting,
                           method="REQUEST", sequence=1))
    assert msg["Subject"].startswith("Updated: Bone metastasis MDT, Thu 03 Dec 2026, 08:00 GMT")
    event = _calendar(msg)[1].walk("VEVENT")[0]
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == utc(2026, 12, 3, 8, 0)


def test_cancellation_carries_cancel_calendar(setting):
    person, _, meeting, _ = setting
    meeting.status = MeetingStatus.CANCELLED
    db.session.commit()
    msg = build_email(_row(NotificationKind.INVITATION, person, meeting=meeting,
                           method="CANCEL", reason="cancelled"))
    assert msg["Subject"].startswith("Cancelled: Bone metastasis MDT")
    parts, cal = _calendar(msg)
    assert all(p.get_param("method") == "CANCEL" for p in parts)
    assert str(cal["METHOD"]) == "CANCEL"
    event = cal.walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == f"meeting-{meeting.id}@mdt"
    assert "cancelled" in _parts(msg)[0]


@pytest.mark.parametrize("kind", [NotificationKind.MEETING_REMINDER, NotificationKind.INVITATION])
def test_nothing_for_past_cancelled_or_removed(setting, make, frozen_clock, kind):
    person, _, meeting, _ = setting
    stranger = make.specialist()
    assert build_email(_row(kind, stranger, meeting=meeting, key="k1")) is None  # not invited
    meeting.status = MeetingStatus.CANCELLED
    db.session.commit()
    assert build_email(_row(kind, person, meeting=meeting, key="k2")) is None
    meeting.status = MeetingStatus.SCHEDULED
    db.session.commit()
    assert build_email(_row(kind, person, meeting=meeting, key="k3")) is not None
    frozen_clock(meeting.starts_at + timedelta(minutes=1))
    assert build_email(_row(kind, person, meeting=meeting, key="k4")) is None


def test_nothing_for_deactivated_person(setting):
    person, _, meeting, _ = setting
    person.is_active = False
    db.session.commit()
    row = _row(NotificationKind.MEETING_REMINDER, person, meeting=meeting)
    assert row.status == NotificationStatus.PENDING
    assert build_email(row) is None
