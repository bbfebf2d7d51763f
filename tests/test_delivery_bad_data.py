"""Data that no form accepts today, already in the database: delivery and the feed still work.

Control characters are written straight into rows (a user's or series' name,
a place, an address), as an old import or a since-fixed form could have left
them. A message that cannot be built fails its row with the error and the
batch goes on; the calendar feed never answers 500.
"""
from __future__ import annotations

import email
import uuid
from datetime import timedelta
from email import policy
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import select

from mdt import clock
from mdt.delivery import services as delivery
from mdt.extensions import db
from mdt.notifications import ics, render
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus
from mdt.notifications.services import regenerate_feed_token

S = NotificationStatus
CRLF_NAME = "Dr Evil\r\nBcc: leak@attacker.example"


def reminder_rows(meeting, people) -> list[int]:
    rows = []
    for person in people:
        rows.append(Notification(
            kind=NotificationKind.MEETING_REMINDER, recipient=person, meeting_id=meeting.id,
            due_at=clock.now() - timedelta(minutes=1), payload={"offset_minutes": 1440},
            dedup_key=f"bad:{uuid.uuid4().hex}"))
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def outcome(ids) -> list[tuple[S, str | None]]:
    db.session.expire_all()
    return [(r.status, r.last_error) for r in db.session.scalars(
        select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id))]


def eml(app, notification_id: int) -> email.message.EmailMessage:
    path = Path(app.config["MAIL_SINK_DIR"]) / f"notification-{notification_id}.eml"
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


@pytest.fixture
def crlf_meeting(make):
    series = make.series(name="Bone\r\nmetastasis\x1b MDT", location="Room\r\n3")
    return make.meeting(series=series, video_url="https://video.example/m\r\nX-Evil: 1")


def test_names_with_line_breaks_still_make_one_line_headers(make, app, crlf_meeting):
    person = make.specialist(name=CRLF_NAME, email="evil.name@example.org")
    make.attendance(crlf_meeting, person, present=False)
    [row_id] = reminder_rows(crlf_meeting, [person])
    assert delivery.deliver_batch([row_id])[row_id].outcome == delivery.Outcome.SENT
    message = eml(app, row_id)
    assert message["To"] == '"Dr Evil Bcc: leak@attacker.example" <evil.name@example.org>'
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"].startswith("Reminder: Bone metastasis MDT, ")


def test_an_unbuildable_message_fails_its_row_and_the_batch_goes_on(make, app, crlf_meeting,
                                                                    monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MAIL_SINK_DIR", str(tmp_path))  # this test's mail only
    people = [make.specialist(email=f"fine{i}.{uuid.uuid4().hex[:6]}@example.org")
              for i in range(3)]
    people[1].email = "broken@example.org\r\nbcc: leak@attacker.example"  # no form allows it
    db.session.commit()
    for person in people:
        make.attendance(crlf_meeting, person, present=False)
    ids = reminder_rows(crlf_meeting, people)
    results = delivery.deliver_batch(ids)
    assert [results[i].outcome for i in ids] == [
        delivery.Outcome.SENT, delivery.Outcome.FAILED, delivery.Outcome.SENT]
    (first, _), (failed, error), (last, _) = outcome(ids)
    assert (first, failed, last) == (S.SENT, S.FAILED, S.SENT)
    assert error.startswith("the message could not be built: UnbuildableMessage(")
    assert "address is not usable" in error
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == [
        f"notification-{ids[0]}.eml", f"notification-{ids[2]}.eml"]


def test_an_unexpected_error_while_sending_fails_only_that_row(make, app, monkeypatch):
    meeting = make.meeting()
    people = [make.specialist() for _ in range(3)]
    for person in people:
        make.attendance(meeting, person, present=False)
    ids = reminder_rows(meeting, people)
    sent: list[str] = []

    class Picky:
        def send(self, outgoing, *, key):
            if key == str(ids[0]):
                raise ValueError("a bug in a mail backend")
            sent.append(key)

    monkeypatch.setattr(delivery, "get_backend", lambda config: Picky())
    delivery.deliver_batch(ids)
    assert [status for status, _ in outcome(ids)] == [S.FAILED, S.SENT, S.SENT]
    assert outcome(ids)[0][1] == "delivery failed: ValueError('a bug in a mail backend')"
    assert sent == [str(ids[1]), str(ids[2])]


def test_an_invitation_with_line_breaks_everywhere_has_a_valid_calendar(make, crlf_meeting):
    person = make.specialist(name=CRLF_NAME)
    make.attendance(crlf_meeting, person, present=False)
    row = Notification(kind=NotificationKind.INVITATION, recipient=person,
                       meeting_id=crlf_meeting.id, due_at=clock.now(), dedup_key="bad:invite",
                       payload={"method": "REQUEST", "sequence": 0})
    db.session.add(row)
    db.session.commit()
    message = render.build_email(row)
    assert message["Subject"].startswith("Invitation: Bone metastasis MDT, ")
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    [event] = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert (str(event["SUMMARY"]), str(event["LOCATION"])) == ("Bone metastasis MDT", "Room 3")
    assert "X-Evil: 1" in str(event["DESCRIPTION"]) and "\n X-Evil" not in str(
        event["DESCRIPTION"])
    assert str(event["ATTENDEE"].params["CN"]) == "Dr Evil Bcc: leak@attacker.example"


def test_the_calendar_feed_of_a_person_with_a_line_break_in_the_name_answers(
        make, client, crlf_meeting):
    person = make.specialist(name=CRLF_NAME)
    make.attendance(crlf_meeting, person, present=False)
    token = regenerate_feed_token(person)
    db.session.commit()
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    cal = icalendar.Calendar.from_ical(response.data)
    assert str(cal["X-WR-CALNAME"]) == "MDT meetings: Dr Evil Bcc: leak@attacker.example"
    [event] = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Bone metastasis MDT"


def test_the_feed_leaves_out_a_meeting_it_cannot_write_instead_of_failing(
        make, client, monkeypatch):
    person = make.specialist()
    good, bad = make.meeting(), make.meeting()
    for meeting in (good, bad):
        make.attendance(meeting, person, present=False)
    token = regenerate_feed_token(person)
    db.session.commit()
    real_event = ics._event

    def event(meeting, *, cancelled):
        if meeting.id == bad.id:
            raise OverflowError("date value out of range")
        return real_event(meeting, cancelled=cancelled)

    monkeypatch.setattr(ics, "_event", event)
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    events = icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"meeting-{good.id}@mdt.test"]
