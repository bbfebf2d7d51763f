"""The notification centre, the unread count, preferences and the private calendar feed."""
from __future__ import annotations

import re
from datetime import timedelta

import icalendar
import sqlalchemy as sa

from mdt.extensions import db
from mdt.meetings.models import MeetingStatus
from mdt.notifications import services
from mdt.notifications.models import (
    CalendarFeedToken,
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
)

from .factories import utc

K = NotificationKind
NOW = utc(2026, 11, 30, 9, 0)


def _row(user, key, *, due=NOW, status=NotificationStatus.SENT, kind=K.MEETING_REMINDER,
         meeting=None, **payload) -> Notification:
    row = Notification(kind=kind, recipient_id=user.id, dedup_key=key, due_at=due, status=status,
                       meeting_id=meeting.id if meeting else None, payload=payload)
    db.session.add(row)
    db.session.commit()
    return row


def test_centre_lists_due_not_cancelled_newest_first(client, login_as, make, frozen_clock):
    frozen_clock(NOW)
    me, other = make.specialist(), make.specialist()
    meeting = make.meeting(series=make.series(name="Spine MDT"), starts_at=NOW + timedelta(days=2))
    _row(me, "old", due=NOW - timedelta(hours=2), meeting=meeting, offset_minutes=60)
    _row(me, "new", due=NOW - timedelta(hours=1), kind=K.INVITATION, meeting=meeting,
         method="REQUEST", sequence=1)
    _row(me, "future", due=NOW + timedelta(hours=1), meeting=meeting)
    _row(me, "cancelled", due=NOW - timedelta(hours=1), status=NotificationStatus.CANCELLED,
         kind=K.AGENDA_CLOSING, meeting=meeting)
    _row(other, "not-mine", kind=K.OPINION_PENDING, meeting=meeting)
    login_as(me)
    html = client.get("/notifications").get_data(as_text=True)
    assert html.index("Meeting changed") < html.index("Meeting reminder")
    assert html.count("Spine MDT") == 2
    assert "Agenda closing" not in html and "Opinion awaited" not in html
    assert re.search(r'class="badge"[^>]*>2<', html)  # unread count in the header


def test_unread_count_costs_one_query(client, login_as, make, count_queries, frozen_clock):
    frozen_clock(NOW)
    me = make.specialist()
    login_as(me)
    client.get("/notifications/preferences")
    with count_queries() as few:
        client.get("/notifications/preferences")
    for n in range(20):
        _row(me, f"k{n}")
    with count_queries() as many:
        html = client.get("/notifications/preferences").get_data(as_text=True)
    assert len(few) == len(many)
    assert sum("count(notifications.id)" in q.lower() for q in many.statements) == 1
    assert ">20<" in html


def test_centre_fixed_queries(client, login_as, make, count_queries, frozen_clock):
    frozen_clock(NOW)
    me = make.specialist()
    login_as(me)
    meeting = make.meeting(starts_at=NOW + timedelta(days=2))
    _row(me, "first", meeting=meeting)
    with count_queries() as few:
        client.get("/notifications")
    for n in range(15):
        _row(me, f"m{n}", meeting=make.meeting(starts_at=NOW + timedelta(days=3 + n)))
    with count_queries() as many:
        client.get("/notifications")
    assert len(few) == len(many)


def test_mark_one_and_all_read(client, login_as, make, frozen_clock):
    frozen_clock(NOW)
    me, other = make.specialist(), make.specialist()
    meeting = make.meeting(starts_at=NOW + timedelta(days=2))
    one = _row(me, "one", meeting=meeting)
    _row(me, "two")
    theirs = _row(other, "theirs")
    login_as(me)
    assert client.get(f"/notifications/{one.id}/read").status_code == 405  # no change on GET
    response = client.post(f"/notifications/{one.id}/read", data={"open": "1"})
    assert response.headers["Location"].endswith(f"/meetings/{meeting.id}")
    assert client.post(f"/notifications/{theirs.id}/read").status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, one.id).read_at == NOW
    assert db.session.get(Notification, theirs.id).read_at is None
    response = client.post("/notifications/read-all", follow_redirects=True)
    assert "1 notification marked as read." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                             .where(Notification.read_at.is_(None))) == 1  # only theirs


def test_centre_needs_sign_in(client):
    assert client.get("/notifications").status_code in (302, 401)
    assert client.get("/notifications/preferences").status_code in (302, 401)


def test_preferences_page_saves_and_keeps_mandatory(client, login_as, make):
    me = make.clinician()
    login_as(me)
    html = client.get("/notifications/preferences").get_data(as_text=True)
    assert re.search(r'id="email-invitation"[^>]*checked[^>]*disabled', html)
    assert "Always sent when you are the responsible clinician" in html
    response = client.post("/notifications/preferences",
                           data={"email": ["agenda_closing", "case_deferred"]},
                           follow_redirects=True)
    assert "Your e-mail preferences are saved." in response.get_data(as_text=True)
    db.session.expire_all()
    prefs = services.email_preferences(me)
    assert {k for k, on in prefs.items() if on} == {K.INVITATION, K.AGENDA_CLOSING,
                                                    K.CASE_DEFERRED}
    stored = {p.kind: p.send_email for p in db.session.scalars(sa.select(NotificationPreference))}
    assert stored[K.INVITATION] is True and stored[K.MEETING_REMINDER] is False
    assert client.post("/notifications/preferences", data={"email": "nonsense"}).status_code == 400


def _feed_url(html: str) -> str:
    return re.search(r'value="(http://[^"]+/calendar/[^"]+\.ics)"', html).group(1)


def test_calendar_feed_lists_meetings_without_patient_data(client, app, login_as, make,
                                                           frozen_clock):
    frozen_clock(NOW)
    me = make.specialist()
    live = make.meeting(series=make.series(name="Bone MDT"), starts_at=NOW + timedelta(days=2))
    gone = make.meeting(starts_at=NOW + timedelta(days=9), status=MeetingStatus.CANCELLED,
                        sequence=1)
    not_mine = make.meeting(starts_at=NOW + timedelta(days=4))
    patient = make.patient(name="Zed Patient", hospital_number="Q1234567")
    make.item(meeting=live, case=make.case(patient=patient))
    make.attendance(live, me)
    make.attendance(gone, me)
    login_as(me)
    html = client.post("/notifications/calendar-feed").get_data(as_text=True)
    url = _feed_url(html)
    token = url.rsplit("/", 1)[1][:-4]
    assert len(token) >= 40
    stored = db.session.scalar(sa.select(CalendarFeedToken))
    assert stored.token_hash != token and len(stored.token_hash) == 64  # only the hash is kept

    anonymous = app.test_client()
    response = anonymous.get(f"/calendar/{token}.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    body = response.get_data(as_text=True)
    assert "Zed" not in body and "Q1234567" not in body and "Z.P." not in body
    events = {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}
    assert set(events) == {f"meeting-{live.id}@mdt.test", f"meeting-{gone.id}@mdt.test"}
    assert f"meeting-{not_mine.id}@mdt.test" not in events
    assert str(events[f"meeting-{live.id}@mdt.test"]["STATUS"]) == "CONFIRMED"
    assert str(events[f"meeting-{gone.id}@mdt.test"]["STATUS"]) == "CANCELLED"
    assert int(events[f"meeting-{gone.id}@mdt.test"]["SEQUENCE"]) == 1
    assert events[f"meeting-{live.id}@mdt.test"].decoded("DTSTART") == live.starts_at
    assert str(events[f"meeting-{live.id}@mdt.test"]["SUMMARY"]) == "Bone MDT"


def test_feed_token_regenerated_and_revoked(client, app, login_as, make):
    me = make.specialist()
    login_as(me)
    anonymous = app.test_client()
    first = _feed_url(client.post("/notifications/calendar-feed").get_data(as_text=True))
    path = lambda url: url.split("mdt.test", 1)[-1].split("localhost", 1)[-1]  # noqa: E731
    assert anonymous.get(path(first)).status_code == 200
    second = _feed_url(client.post("/notifications/calendar-feed").get_data(as_text=True))
    assert first != second
    assert anonymous.get(path(first)).status_code == 404
    assert anonymous.get(path(second)).status_code == 200
    page = client.get("/notifications/preferences").get_data(as_text=True)
    assert "You have a calendar address" in page and second not in page
    response = client.post("/notifications/calendar-feed/revoke", follow_redirects=True)
    assert "no longer works" in response.get_data(as_text=True)
    assert anonymous.get(path(second)).status_code == 404
    assert anonymous.get("/calendar/not-a-token.ics").status_code == 404


def test_feed_of_a_deactivated_person_is_gone(client, app, make):
    me = make.specialist()
    token = services.regenerate_feed_token(me)
    db.session.commit()
    assert app.test_client().get(f"/calendar/{token}.ics").status_code == 200
    me.is_active = False
    db.session.commit()
    assert app.test_client().get(f"/calendar/{token}.ics").status_code == 404
