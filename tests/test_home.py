"""The home page per role: next meetings, opinions awaited, recent consensus."""
from __future__ import annotations

from datetime import timedelta

from mdt import clock
from mdt.decisions.models import Consensus, Outcome
from mdt.extensions import db
from mdt.meetings.models import Triage


def _sign(item, chair, responsible=None):
    consensus = Consensus(agenda_item=item, outcome=Outcome.AGREED, recommendation="SBRT 24 Gy/2",
                          responsible_clinician=responsible, attendees_snapshot=[],
                          was_quorate=True, signed_by=chair, signed_by_name=chair.name,
                          signed_by_discipline=chair.discipline, signed_at=clock.now())
    db.session.add(consensus)
    db.session.commit()
    return consensus


def test_home_needs_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_specialist_sees_items_waiting_for_their_opinion(client, make, login_as):
    me, other = make.specialist(), make.specialist()
    meeting = make.meeting()
    make.attendance(meeting, me)
    waiting = make.item(meeting=meeting)
    make.proposal(item=waiting, author=other)
    answered = make.item(meeting=meeting)
    proposal = make.proposal(item=answered, author=other)
    make.opinion(proposal, me)
    listed_only = make.item(meeting=meeting, triage=Triage.STANDARD_OF_CARE)
    make.proposal(item=listed_only, author=other)

    body = login_as(me).get("/").get_data(as_text=True)

    assert f"Case {waiting.case_id} " in body
    assert f"Case {answered.case_id} " not in body
    assert f"Case {listed_only.case_id} " not in body
    assert meeting.series.name in body  # invited to it: listed under my next meetings


def test_meeting_not_invited_to_is_not_listed_for_specialist(client, make, login_as):
    make.meeting(series=make.series(name="Thoracic MDT"))
    body = login_as(make.specialist()).get("/").get_data(as_text=True)
    assert "Thoracic MDT" not in body
    assert "No upcoming meetings you are invited to" in body


def test_clinician_sees_only_consensus_about_their_patients(client, make, login_as):
    clinician, chair = make.clinician(), make.specialist()
    mine = make.item(case=make.case(referrer=clinician))
    theirs = make.item()
    _sign(mine, chair)
    _sign(theirs, chair)
    body = login_as(clinician).get("/").get_data(as_text=True)
    assert f"Case {mine.case_id} " in body
    assert f"Case {theirs.case_id} " not in body


def test_clinician_named_responsible_sees_that_consensus(client, make, login_as):
    clinician, chair = make.clinician(), make.specialist()
    item = make.item()
    _sign(item, chair, responsible=clinician)
    body = login_as(clinician).get("/").get_data(as_text=True)
    assert f"Case {item.case_id} " in body


def test_coordinator_sees_cases_waiting_for_an_agenda_with_readiness(client, make, login_as):
    ready = make.case()
    not_ready = make.case(ready=False)
    scheduled = make.case()
    make.item(case=scheduled)
    body = login_as(make.coordinator()).get("/").get_data(as_text=True)
    assert f"Case {ready.id} " in body
    assert f"Case {not_ready.id} " in body
    assert "Missing: ECOG performance status recorded, At least one imaging reference" in body
    assert f"Case {scheduled.id} " not in body


def test_past_and_cancelled_meetings_are_not_upcoming(client, make, login_as):
    from mdt.meetings.models import MeetingStatus

    make.meeting(series=make.series(name="Past MDT"), starts_at=clock.now() - timedelta(days=2))
    make.meeting(series=make.series(name="Cancelled MDT"), status=MeetingStatus.CANCELLED)
    make.meeting(series=make.series(name="Next MDT"))
    body = login_as(make.coordinator()).get("/").get_data(as_text=True)
    assert "Next MDT" in body
    assert "Past MDT" not in body and "Cancelled MDT" not in body


def test_home_page_query_count_does_not_grow_with_data(client, make, login_as, count_queries):
    me = make.specialist()
    login_as(me)

    def populate(n):
        meeting = make.meeting()
        make.attendance(meeting, me)
        for _ in range(n):
            item = make.item(meeting=meeting)
            make.proposal(item=item)
            _sign(make.item(meeting=meeting), make.specialist())

    populate(1)
    with count_queries() as small:
        client.get("/")
    populate(8)
    with count_queries() as large:
        client.get("/")
    assert len(large) == len(small)
