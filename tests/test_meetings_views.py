"""Meeting pages through the test client: series, meetings, agenda, attendance."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.auth.models import Discipline
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    Presence,
    Response,
    Triage,
)

from .factories import utc

NOW = utc(2026, 11, 2, 2, 0)  # Monday 10:00 in Shanghai


@pytest.fixture
def coordinator(make, login_as, frozen_clock):
    frozen_clock(NOW)
    user = make.coordinator()
    login_as(user)
    return user


def page(response) -> str:
    return response.get_data(as_text=True)


SERIES_FORM = {"name": "Bone metastasis MDT", "weekday": "3", "start_time": "14:00",
               "time_zone": "Europe/London", "duration_minutes": "90", "location": "Room 3",
               "video_url": "https://video.example.org/mdt", "default_chair_id": "",
               "core_disciplines": ["radiation_oncology", "orthopaedics"], "cutoff_hours": "48",
               "reminder_offsets": "1440, 60"}


# --- series -------------------------------------------------------------------

def test_new_series_form_has_defaults(client, coordinator):
    html = page(client.get("/series/new"))
    assert 'value="Asia/Shanghai"' in html
    assert 'value="1440, 60"' in html and 'value="24"' in html
    for core in ("radiation_oncology", "orthopaedics", "interventional_radiology",
                 "medical_oncology"):
        assert re.search(rf'<input checked[^>]*value="{core}"', html)
    assert not re.search(r'<input checked[^>]*value="pathology"', html)


def test_create_series_generates_meetings(client, coordinator, make):
    chair = make.specialist()
    response = client.post("/series/new", data={**SERIES_FORM, "default_chair_id": str(chair.id)})
    assert response.status_code == 302
    series = db.session.scalars(select(MeetingSeries)).one()
    assert (series.time_zone, series.cutoff_hours, series.default_chair_id) == (
        "Europe/London", 48, chair.id)
    assert series.core_disciplines == ["radiation_oncology", "orthopaedics"]
    meetings = db.session.scalars(select(Meeting).order_by(Meeting.starts_at)).all()
    assert len(meetings) == 8 and meetings[0].occurrence_date == date(2026, 11, 5)
    assert meetings[0].starts_at == utc(2026, 11, 5, 14, 0)  # GMT in November
    assert {m.chair_id for m in meetings} == {chair.id}
    assert "8 upcoming meetings" in page(client.get("/series"))


def test_bad_series_input_is_shown_next_to_field_and_kept(client, coordinator):
    response = client.post("/series/new", data={**SERIES_FORM, "time_zone": "Mars/Olympus",
                                                "reminder_offsets": "soon"})
    html = page(response)
    assert response.status_code == 200
    assert "Unknown time zone" in html and 'value="Mars/Olympus"' in html
    assert "Whole minutes before the start" in html
    assert db.session.scalars(select(MeetingSeries)).all() == []


def test_edit_series_and_generate(client, coordinator, make):
    series = make.series()
    assert page(client.get(f"/series/{series.id}/edit")).count('value="Bone metastasis MDT"') == 1
    response = client.post(f"/series/{series.id}/edit",
                           data={**SERIES_FORM, "name": "Spine MDT", "time_zone": "Asia/Shanghai"})
    assert response.status_code == 302
    db.session.expire_all()
    assert series.name == "Spine MDT"
    client.post(f"/series/{series.id}/generate")
    assert len(db.session.scalars(select(Meeting)).all()) == 8
    response = client.post(f"/series/{series.id}/generate", follow_redirects=True)
    assert "already scheduled" in page(response)
    assert len(db.session.scalars(select(Meeting)).all()) == 8


# --- meetings -----------------------------------------------------------------

def test_index_lists_upcoming_and_past(client, coordinator, make):
    series = make.series(name="Spine MDT")
    make.meeting(series=series, starts_at=NOW + timedelta(days=3))
    make.meeting(series=series, starts_at=NOW - timedelta(days=4), status=MeetingStatus.CANCELLED,
                 cancel_reason="Holiday")
    html = page(client.get("/meetings"))
    assert "Thu 05 Nov 2026, 10:00 CST" in html and "Cancelled" in html


def test_detail_shows_header_agenda_and_quorum(client, coordinator, make):
    chair = make.specialist(name="Dr Chair")
    team = make.core_team()
    meeting = make.meeting(chair=chair, starts_at=NOW + timedelta(hours=5),
                           video_url="https://video.example.org/x")
    patient = make.patient(name="Ada Lovelace", hospital_number="H0042")
    first = make.item(meeting=meeting, case=make.case(patient=patient))
    make.item(meeting=meeting, case=make.case(ready=False), triage=None, is_late=True)
    make.attendance(meeting, team[Discipline.RADIATION_ONCOLOGY])
    make.attendance(meeting, team[Discipline.ORTHOPAEDICS], present=False)
    html = page(client.get(f"/meetings/{meeting.id}"))
    assert "Mon 02 Nov 2026, 15:00 CST" in html and "Asia/Shanghai" in html
    assert "Room 3" in html and "https://video.example.org/x" in html and "Dr Chair" in html
    assert "AL · H0042" in html and "Late addition" in html
    assert "ECOG performance status recorded" in html  # what the second case lacks
    assert "Not quorate" in html
    present = html.split("<h3>Present</h3>")[1].split("<h3>Missing</h3>")
    assert "Radiation oncology" in present[0] and "Orthopaedics" not in present[0]
    assert "Orthopaedics" in present[1] and "Medical oncology" in present[1]
    assert html.index(f'id="item-{first.id}"') < html.index("Late addition")


def test_clinician_sees_only_own_patients_identifiers(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    clinician = make.clinician()
    meeting = make.meeting()
    make.item(meeting=meeting, case=make.case(referrer=clinician,
                                              patient=make.patient(hospital_number="HOWN1")))
    other = make.item(meeting=meeting,
                      case=make.case(patient=make.patient(hospital_number="HOTH2")))
    login_as(clinician)
    html = page(client.get(f"/meetings/{meeting.id}"))
    assert "HOWN1" in html and "HOTH2" not in html and f"Case {other.case_id}" in html


def test_reschedule_in_local_time(client, coordinator, make):
    meeting = make.meeting(series=make.series(time_zone="Europe/London"),
                           starts_at=utc(2026, 11, 5, 14, 0))
    form = page(client.get(f"/meetings/{meeting.id}/edit"))
    assert 'value="2026-11-05"' in form and 'value="14:00"' in form
    response = client.post(f"/meetings/{meeting.id}/edit", data={
        "version": str(meeting.version), "day": "2026-11-06", "start_time": "09:30",
        "duration_minutes": "60", "location": "Room 8", "video_url": "", "chair_id": ""})
    assert response.status_code == 302
    db.session.expire_all()
    assert meeting.starts_at == utc(2026, 11, 6, 9, 30) and meeting.sequence == 1
    assert meeting.location == "Room 8"


def test_stale_meeting_edit_ends_in_conflict_message(client, coordinator, make):
    meeting = make.meeting()
    stale = meeting.version
    meeting.location = "Room 5"  # someone else's change
    db.session.commit()
    response = client.post(f"/meetings/{meeting.id}/edit", data={
        "version": str(stale), "day": "2026-11-06", "start_time": "09:30",
        "duration_minutes": "60", "location": "Room 8", "video_url": "", "chair_id": ""})
    assert response.status_code == 409
    assert "Someone else changed this meeting" in page(response)
    assert 'value="Room 8"' in page(response)  # what was typed is kept
    db.session.expire_all()
    assert meeting.location == "Room 5"


def test_cancel_meeting_needs_reason(client, coordinator, make):
    meeting = make.meeting()
    response = client.post(f"/meetings/{meeting.id}/cancel",
                           data={"version": str(meeting.version), "reason": ""})
    assert response.status_code == 400 and "Required." in page(response)
    response = client.post(f"/meetings/{meeting.id}/cancel",
                           data={"version": str(meeting.version), "reason": "Public holiday"})
    assert response.status_code == 302
    db.session.expire_all()
    assert meeting.status == MeetingStatus.CANCELLED
    assert "Cancelled: Public holiday" in page(client.get(f"/meetings/{meeting.id}"))


# --- agenda -------------------------------------------------------------------

def test_coordinator_adds_a_case_late(client, coordinator, make):
    meeting = make.meeting(starts_at=NOW + timedelta(hours=3))
    case = make.case(patient=make.patient(hospital_number="H777"))
    presenter = make.specialist()
    form = page(client.get(f"/meetings/{meeting.id}/items/new"))
    assert "H777" in form and "marked as a late addition" in form
    response = client.post(f"/meetings/{meeting.id}/items/new", data={
        "case_id": str(case.id), "minutes_allotted": "15", "presenter_id": str(presenter.id)},
        follow_redirects=True)
    assert "Case added to the agenda (late" in page(response)
    item = db.session.scalars(select(AgendaItem)).one()
    assert (item.is_late, item.minutes_allotted, item.presenter_id) == (True, 15, presenter.id)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.case_id == case.id)).one()
    assert entry.action == "agenda_item.added" and entry.actor_id == coordinator.id


def test_clinician_adds_own_case_from_case_page_before_cutoff(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    clinician = make.clinician()
    case = make.case(referrer=clinician)
    series = make.series()
    soon = make.meeting(series=series, starts_at=NOW + timedelta(hours=10))  # cutoff passed
    later = make.meeting(series=series, starts_at=NOW + timedelta(days=3))
    login_as(clinician)
    form = page(client.get(f"/cases/{case.id}/agenda"))
    meeting_select = form.split('name="meeting_id"')[1].split("</select>")[0]
    assert f'value="{later.id}"' in meeting_select and f'value="{soon.id}"' not in meeting_select
    refused = client.post(f"/cases/{case.id}/agenda", data={
        "meeting_id": str(soon.id), "minutes_allotted": "10", "presenter_id": ""})
    assert refused.status_code == 200 and "Not a valid choice" in page(refused)
    response = client.post(f"/cases/{case.id}/agenda", data={
        "meeting_id": str(later.id), "minutes_allotted": "10", "presenter_id": ""})
    assert response.status_code == 302
    assert db.session.scalars(select(AgendaItem)).one().meeting_id == later.id
    assert "No upcoming meeting is open" in page(client.get(f"/cases/{case.id}/agenda"))
    # Straight at the meeting's own form the cutoff refusal is explicit.
    refused = client.post(f"/meetings/{soon.id}/items/new", data={
        "case_id": str(case.id), "minutes_allotted": "10", "presenter_id": ""})
    assert refused.status_code == 403 and "cutoff" in page(refused)


def test_clinician_cannot_reach_someone_elses_case(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    case = make.case()
    login_as(make.clinician())
    assert client.get(f"/cases/{case.id}/agenda").status_code == 404


def test_triage_blocked_for_unready_case(client, coordinator, make):
    item = make.item(case=make.case(ready=False), triage=None)
    response = client.post(f"/items/{item.id}/triage", data={"triage": "for_discussion"},
                           follow_redirects=True)
    html = page(response)
    assert "cannot be triaged for discussion" in html
    assert "ECOG performance status recorded" in html and "At least one imaging reference" in html
    db.session.expire_all()
    assert item.triage is None
    client.post(f"/items/{item.id}/triage", data={"triage": "standard_of_care"})
    db.session.expire_all()
    assert item.triage == Triage.STANDARD_OF_CARE


def test_status_defer_needs_reason_and_withdraw(client, coordinator, make):
    meeting = make.meeting()
    deferred, withdrawn = make.item(meeting=meeting), make.item(meeting=meeting)
    response = client.post(f"/items/{deferred.id}/status", data={"status": "deferred"},
                           follow_redirects=True)
    assert "Give a reason for deferring" in page(response)
    client.post(f"/items/{deferred.id}/status", data={"status": "deferred", "reason": "MRI"})
    client.post(f"/items/{withdrawn.id}/status", data={"status": "withdrawn"})
    db.session.expire_all()
    assert (deferred.status, deferred.status_reason) == (ItemStatus.DEFERRED, "MRI")
    assert withdrawn.status == ItemStatus.WITHDRAWN


def test_remove_move_and_edit_items(client, coordinator, make):
    meeting = make.meeting()
    a, b, c = (make.item(meeting=meeting) for _ in range(3))
    make.proposal(item=c)
    client.post(f"/items/{c.id}/move", data={"direction": "up"})
    response = client.post(f"/items/{c.id}/remove", follow_redirects=True)
    assert "Withdraw it instead" in page(response)
    client.post(f"/items/{a.id}/remove")
    response = client.post(f"/items/{b.id}/edit", data={
        "version": str(b.version), "minutes_allotted": "25", "presenter_id": ""})
    assert response.status_code == 302
    db.session.expire_all()
    assert [(i.id, i.position) for i in meeting.items] == [(c.id, 1), (b.id, 2)]
    assert b.minutes_allotted == 25
    stale = client.post(f"/items/{b.id}/edit", data={
        "version": "1", "minutes_allotted": "5", "presenter_id": ""})
    assert stale.status_code == 409 and "Someone else changed this agenda item" in page(stale)


def test_carry_over_through_the_page(client, coordinator, make):
    series = make.series()
    first = make.meeting(series=series, starts_at=NOW - timedelta(hours=3))
    second = make.meeting(series=series, starts_at=NOW + timedelta(days=4))
    item = make.item(meeting=first)  # not reached: still pending after the meeting
    proposal = make.proposal(item=item)
    assert "Carry over to the next meeting" in page(client.get(f"/meetings/{first.id}"))
    response = client.post(f"/items/{item.id}/carry-over", follow_redirects=True)
    assert "carried over" in page(response)
    db.session.expire_all()
    new_item = db.session.scalars(select(AgendaItem)
                                  .where(AgendaItem.meeting_id == second.id)).one()
    assert item.carried_to_id == new_item.id and item.status_reason == "Not reached"
    assert proposal.agenda_item_id == new_item.id
    again = client.post(f"/items/{item.id}/carry-over", follow_redirects=True)
    assert "already carried over" in page(again)


# --- attendance ---------------------------------------------------------------

def test_invite_people_and_core_team(client, coordinator, make):
    chair = make.specialist(discipline=Discipline.PATHOLOGY)
    team = make.core_team()
    meeting = make.meeting(chair=chair)
    guest = make.specialist(discipline=Discipline.NURSING)
    client.post(f"/meetings/{meeting.id}/attendees", data={"user_id": str(guest.id)})
    response = client.post(f"/meetings/{meeting.id}/attendees", data={"core_team": "1"},
                           follow_redirects=True)
    assert "5 member(s) of the core team invited" in page(response)
    response = client.post(f"/meetings/{meeting.id}/attendees", data={"core_team": "1"},
                           follow_redirects=True)
    assert "already invited" in page(response)
    invited = set(db.session.scalars(select(Attendance.user_id)))
    assert invited == {guest.id, chair.id} | {u.id for u in team.values()}


def test_remove_attendee_is_audited(client, coordinator, make):
    meeting = make.meeting()
    attendance = make.attendance(meeting, make.specialist())
    assert client.post(f"/attendances/{attendance.id}/remove").status_code == 302
    assert db.session.scalars(select(Attendance)).all() == []
    assert db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "attendance.removed")).one().data["meeting_id"] == meeting.id


def test_invitee_answers_for_themself_only(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting()
    person, other = make.specialist(), make.specialist()
    mine = make.attendance(meeting, person, present=False, response=Response.INVITED)
    theirs = make.attendance(meeting, other, present=False, response=Response.INVITED)
    login_as(person)
    assert client.post(f"/attendances/{mine.id}/response",
                       data={"response": "apologies"}).status_code == 302
    assert client.post(f"/attendances/{theirs.id}/response",
                       data={"response": "declined"}).status_code == 403
    db.session.expire_all()
    assert (mine.response, theirs.response) == (Response.APOLOGIES, Response.INVITED)


def test_chair_records_presence_on_the_day(client, make, login_as, frozen_clock):
    frozen_clock(NOW - timedelta(days=1))
    chair = make.specialist()
    meeting = make.meeting(chair=chair, starts_at=NOW + timedelta(hours=4))
    attendance = make.attendance(meeting, make.specialist(), present=False)
    login_as(chair)
    assert ">Present</button>" not in page(client.get(f"/meetings/{meeting.id}"))
    frozen_clock(NOW)
    login_as(chair)  # signed in again: the session ended after 30 idle minutes
    assert ">Present</button>" in page(client.get(f"/meetings/{meeting.id}"))
    assert client.post(f"/attendances/{attendance.id}/presence",
                       data={"presence": "present"}).status_code == 302
    db.session.expire_all()
    assert attendance.presence == Presence.PRESENT
    login_as(make.specialist())
    assert client.post(f"/attendances/{attendance.id}/presence",
                       data={"presence": "absent"}).status_code == 403


# --- fixed query counts -------------------------------------------------------

def _meeting_with(make, n_items: int) -> Meeting:
    meeting = make.meeting(chair=make.specialist())
    for _ in range(n_items):
        item = make.item(meeting=meeting, presenter=make.specialist())
        make.proposal(item=item)
        make.attendance(meeting, make.specialist(discipline=Discipline.ORTHOPAEDICS))
    return meeting


def test_meeting_page_runs_a_fixed_number_of_queries(client, coordinator, make, count_queries):
    small, large = _meeting_with(make, 2), _meeting_with(make, 20)
    counts = []
    for meeting in (small, large):
        with count_queries() as queries:
            assert client.get(f"/meetings/{meeting.id}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_meetings_list_runs_a_fixed_number_of_queries(client, coordinator, make, count_queries):
    series = make.series()
    counts = []
    for n in (2, 20):
        db.session.execute(AgendaItem.__table__.delete())
        db.session.execute(Meeting.__table__.delete())
        db.session.commit()
        for k in range(n):
            make.item(meeting=make.meeting(series=series, chair=make.specialist(),
                                           starts_at=NOW + timedelta(days=k - n // 2, hours=1)))
        with count_queries() as queries:
            assert client.get("/meetings").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_meeting_list_says_held_for_past_meetings(client, make, login_as):
    from datetime import timedelta

    from mdt import clock

    make.meeting(series=make.series(name="Past MDT"), starts_at=clock.now() - timedelta(days=7))
    make.meeting(series=make.series(name="Next MDT"))
    body = login_as(make.coordinator()).get("/meetings").get_data(as_text=True)
    upcoming, past = body.split("<h2>Recent</h2>")
    assert "Next MDT" in upcoming and "Scheduled" in upcoming and "Held" not in upcoming
    assert "Past MDT" in past and "Held" in past


def test_status_and_carry_over_from_the_item_page_return_to_the_item_page(client, make, login_as):
    from datetime import timedelta

    from mdt import clock

    series = make.series()
    past = make.meeting(series=series, starts_at=clock.now() - timedelta(days=1))
    make.meeting(series=series)
    item = make.item(meeting=past)
    login_as(make.coordinator())
    response = client.post(f"/items/{item.id}/status",
                           data={"status": "deferred", "reason": "Awaiting CT",
                                 "return_to": "item"})
    assert response.headers["Location"] == f"/items/{item.id}"
    response = client.post(f"/items/{item.id}/carry-over", data={"return_to": "item"})
    db.session.expire_all()
    assert item.carried_to_id is not None
    assert response.headers["Location"] == f"/items/{item.carried_to_id}"
    response = client.post(f"/items/{item.id}/status", data={"status": "withdrawn"})
    assert response.headers["Location"].startswith(f"/meetings/{past.id}")


def test_the_answer_select_shows_the_invitees_own_answer(client, make, login_as):
    meeting = make.meeting()
    person = make.specialist()
    make.attendance(meeting, person, present=False, response=Response.APOLOGIES)
    login_as(person)
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    select = re.search(r'<select id="response-\d+" name="response">(.*?)</select>', html, re.S)
    assert select is not None
    assert re.findall(r"<option[^>]*>([^<]+)</option>", select.group(1)) == [
        "Accepted", "Declined", "Apologies"]
    assert '<option selected value="apologies">' in select.group(1)
