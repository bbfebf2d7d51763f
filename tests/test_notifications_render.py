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
    assert str(event["UID"]) == f"meeting-{meeting.id}@mdt.test"
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
    assert str(event["UID"]) == f"meeting-{meeting.id}@mdt.test"
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


# --- the other kinds ---------------------------------------------------------------------------

from datetime import date  # noqa: E402

from mdt.auth.models import Discipline  # noqa: E402
from mdt.decisions.models import (  # noqa: E402
    Amendment,
    Consensus,
    ConsensusAction,
    Outcome,
)
from mdt.meetings.models import ItemStatus, Response  # noqa: E402


def _consensus(item, *, responsible=None, actions=()) -> Consensus:
    consensus = Consensus(agenda_item=item, outcome=Outcome.AGREED, recommendation="SBRT 8 Gy",
                          responsible_clinician_id=responsible.id if responsible else None,
                          attendees_snapshot=[], was_quorate=True,
                          signed_by_id=item.case.referring_clinician_id, signed_by_name="Signer",
                          signed_by_discipline="radiology", signed_at=NOW)
    with db.session.no_autoflush:
        consensus.actions = [ConsensusAction(description=d, owner_id=o.id, due_on=due)
                             for d, o, due in actions]
        db.session.add(consensus)
    db.session.commit()
    return consensus


def test_consensus_signed_links_to_the_report(setting, make):
    _, patient, meeting, item = setting
    responsible = make.clinician(name="Rui Resp", time_zone="Asia/Shanghai")
    consensus = _consensus(item, responsible=responsible)
    msg = build_email(_row(NotificationKind.CONSENSUS_SIGNED, responsible, case=item.case,
                           consensus_id=consensus.id, role="responsible"))
    assert msg["Subject"] == f"Consensus signed: Case {item.case_id}"
    assert msg["To"] == f"Rui Resp <{responsible.email}>"
    text, html = _parts(msg)
    for body in (text, html):
        assert f"http://mdt.test/cases/{item.case_id}/report" in body
        assert "responsible clinician" in body
        assert "Recommendation agreed" in body
        assert "Thu 03 Dec 2026, 14:00 CST (Asia/Shanghai)" in body
        assert "SBRT 8 Gy" not in body  # clinical free text stays in the app
    _assert_minimal_patient_data(msg, patient)
    assert not list(p for p in msg.walk() if p.get_content_type() == "text/calendar")


def test_amendment_names_author_not_text(setting, make):
    _, patient, _, item = setting
    referrer = item.case.referring_clinician
    consensus = _consensus(item)
    amendment = Amendment(consensus=consensus, author=make.specialist(name="Ann Author"),
                          created_at=NOW, reason="Wrong dose typed",
                          correction="Read 8 Gy single fraction")
    db.session.add(amendment)
    db.session.commit()
    msg = build_email(_row(NotificationKind.AMENDMENT, referrer, case=item.case,
                           consensus_id=consensus.id, amendment_id=amendment.id,
                           role="referrer"))
    assert msg["Subject"] == f"Consensus amended: Case {item.case_id}"
    text, html = _parts(msg)
    assert "Ann Author" in text and "you referred" in text
    assert "8 Gy single" not in text and "Wrong dose" not in html
    _assert_minimal_patient_data(msg, patient)


def test_action_due_and_overdue(setting, make):
    person, patient, _, item = setting
    consensus = _consensus(item, actions=[("Book planning CT for Li Wei", person,
                                           date(2026, 12, 14))])
    action = consensus.actions[0]
    due = build_email(_row(NotificationKind.ACTION_DUE, person, case=item.case,
                           action_id=action.id, overdue=False, key="due"))
    late = build_email(_row(NotificationKind.ACTION_DUE, person, case=item.case,
                            action_id=action.id, overdue=True, key="late"))
    assert due["Subject"] == f"Action due today: Case {item.case_id}"
    assert late["Subject"] == f"Action overdue: Case {item.case_id}"
    assert "due today, 14 Dec 2026" in _parts(due)[0]
    assert "was due on 14 Dec 2026" in _parts(late)[0]
    assert "planning CT" not in due.as_string()
    _assert_minimal_patient_data(due, patient)
    # A row for someone who does not own the action is not sent.
    assert build_email(_row(NotificationKind.ACTION_DUE, make.specialist(), case=item.case,
                            action_id=action.id, overdue=False, key="other")) is None


def test_case_deferred_with_reason_and_new_date(setting, make):
    _, patient, meeting, item = setting
    referrer = item.case.referring_clinician
    item.status, item.status_reason = ItemStatus.DEFERRED, "Awaiting spine MRI"
    later = make.meeting(series=meeting.series, starts_at=utc(2026, 12, 10, 6, 0))
    new_item = make.item(meeting=later, case=item.case)
    db.session.commit()
    msg = build_email(_row(NotificationKind.CASE_DEFERRED, referrer, case=item.case,
                           item_id=item.id, new_item_id=new_item.id, key="a"))
    assert msg["To"].endswith(f"<{referrer.email}>")
    assert msg["Subject"] == (f"Case carried over: Case {item.case_id} to "
                              "Thu 10 Dec 2026, 14:00 CST (Asia/Shanghai)")
    text, html = _parts(msg)
    for body in (text, html):
        assert "Awaiting spine MRI" in body
        assert "Thu 10 Dec 2026, 14:00 CST (Asia/Shanghai)" in body
    _assert_minimal_patient_data(msg, patient)
    new_item.status = ItemStatus.WITHDRAWN  # the case withdrawn from the new meeting
    db.session.commit()
    assert build_email(_row(NotificationKind.CASE_DEFERRED, referrer, case=item.case,
                            item_id=item.id, new_item_id=new_item.id, key="b")) is None


def test_case_deferred_without_new_meeting(setting):
    _, _, _, item = setting
    item.status, item.status_reason = ItemStatus.DEFERRED, "Awaiting biopsy"
    db.session.commit()
    msg = build_email(_row(NotificationKind.CASE_DEFERRED, item.case.referring_clinician,
                           case=item.case, item_id=item.id))
    assert msg["Subject"] == f"Case deferred: Case {item.case_id}"
    text = _parts(msg)[0]
    assert "Awaiting biopsy" in text and "a coordinator can carry it over" in text
    assert f"http://mdt.test/cases/{item.case_id}" in text


def test_agenda_closing_for_coordinator_and_waiting_referrer(setting, make):
    _, _, meeting, item = setting
    coordinator = make.coordinator()
    busy = item.case.referring_clinician  # their case is already on the agenda
    waiting = make.clinician()
    waiting_case = make.case(referrer=waiting, patient=make.patient(name="Mo Zed",
                                                                     hospital_number="X0000987"))
    msg = build_email(_row(NotificationKind.AGENDA_CLOSING, coordinator, meeting=meeting,
                           key="c"))
    assert msg["Subject"].startswith("Agenda closing Wed 02 Dec 2026, 14:00 CST (Asia/Shanghai)")
    assert build_email(_row(NotificationKind.AGENDA_CLOSING, busy, meeting=meeting,
                            key="b")) is None
    nudge = build_email(_row(NotificationKind.AGENDA_CLOSING, waiting, meeting=meeting, key="w"))
    text = _parts(nudge)[0]
    assert f"Case {waiting_case.id} · M.Z. …987" in text
    assert f"http://mdt.test/cases/{waiting_case.id}" in text


def test_opinion_pending_lists_items_missing_the_persons_opinion(setting, make):
    person, patient, meeting, item = setting
    author = make.specialist(discipline=Discipline.ORTHOPAEDICS)
    first = make.proposal(item=item, author=author)
    second = make.proposal(item=item, author=author)
    make.proposal(item=item, author=person)  # their own does not count
    row = _row(NotificationKind.OPINION_PENDING, person, meeting=meeting)
    msg = build_email(row)
    assert msg["Subject"].startswith("Your opinion is awaited on 1 case: Bone metastasis MDT")
    assert "2 proposals without your opinion" in _parts(msg)[0]
    _assert_minimal_patient_data(msg, patient)
    make.opinion(first, person)
    make.opinion(second, person)
    assert build_email(row) is None  # every proposal has their opinion


def test_opinion_pending_none_when_not_for_discussion_or_declined(setting, make):
    person, _, meeting, item = setting
    make.proposal(item=item, author=make.specialist())
    row = _row(NotificationKind.OPINION_PENDING, person, meeting=meeting)
    assert build_email(row) is not None
    item.triage = Triage.STANDARD_OF_CARE
    db.session.commit()
    assert build_email(row) is None
    item.triage = Triage.FOR_DISCUSSION
    db.session.commit()
    attendance = meeting.attendances[0]
    attendance.response = Response.DECLINED
    db.session.commit()
    assert build_email(row) is None


def test_opinion_pending_none_without_proposals(setting):
    person, _, meeting, _ = setting
    assert build_email(_row(NotificationKind.OPINION_PENDING, person, meeting=meeting)) is None


def test_removal_cancel_dropped_once_invited_again(setting):
    person, _, meeting, _ = setting  # person attends the meeting (again)
    row = _row(NotificationKind.INVITATION, person, meeting=meeting, method="CANCEL",
               reason="removed")
    assert build_email(row) is None
    db.session.delete(meeting.attendances[0])
    db.session.commit()
    assert build_email(row)["Subject"].startswith("Removed from: Bone metastasis MDT")
