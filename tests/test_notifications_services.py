"""The hooks: which rows they write (kind, recipient, due time, key), once, and how they move."""
from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from mdt.auth.models import Discipline
from mdt.decisions.models import Amendment, Consensus, ConsensusAction, Outcome
from mdt.extensions import db
from mdt.meetings.models import Attendance, ItemStatus, MeetingStatus
from mdt.notifications import services
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .factories import utc

K = NotificationKind
S = NotificationStatus
NOW = utc(2026, 11, 30, 9, 0)
START = utc(2026, 12, 10, 6, 0)  # Thu 10 Dec, 14:00 in Shanghai


def make_request_context():
    from flask import current_app

    return current_app.test_request_context()


def rows(**filters) -> list[Notification]:
    db.session.expire_all()
    query = sa.select(Notification).order_by(Notification.id)
    for name, value in filters.items():
        query = query.where(getattr(Notification, name) == value)
    return list(db.session.scalars(query))


def keyed() -> dict[str, Notification]:
    return {row.dedup_key: row for row in rows()}


def attend(meeting, user) -> Attendance:
    """Add an attendance as the meetings service does, and call the hook."""
    attendance = Attendance(meeting=meeting, user=user)
    db.session.add(attendance)
    db.session.flush()
    services.on_attendee_added(attendance)
    db.session.commit()
    return attendance


@pytest.fixture
def meeting(make, frozen_clock):
    frozen_clock(NOW)
    return make.meeting(starts_at=START)


def test_attendee_added_invites_and_schedules_reminders_once(meeting, make):
    person = make.specialist()
    attendance = attend(meeting, person)
    services.on_attendee_added(attendance)  # a second run adds nothing
    db.session.commit()
    found = keyed()
    m, u, _a = meeting.id, person.id, attendance.id
    assert set(found) == {f"invitation:m{m}:u{u}:r0:s0",
                          f"meeting_reminder:m{m}:u{u}:1440", f"meeting_reminder:m{m}:u{u}:60"}
    invitation = found[f"invitation:m{m}:u{u}:r0:s0"]
    assert (invitation.kind, invitation.recipient_id, invitation.due_at) == (K.INVITATION, u, NOW)
    assert invitation.payload == {"method": "REQUEST", "sequence": 0, "round": 0, "update": False}
    assert found[f"meeting_reminder:m{m}:u{u}:1440"].due_at == START - timedelta(hours=24)
    assert found[f"meeting_reminder:m{m}:u{u}:60"].due_at == START - timedelta(hours=1)
    assert all(r.status == S.PENDING and r.meeting_id == m and r.send_email for r in found.values())


def test_reminder_offsets_from_the_series_and_past_ones_skipped(make, frozen_clock):
    frozen_clock(NOW)
    series = make.series(reminder_offsets_minutes=[7 * 24 * 60, 48 * 60, 30])
    meeting = make.meeting(series=series, starts_at=NOW + timedelta(days=3))
    attend(meeting, make.specialist())
    reminders = rows(kind=K.MEETING_REMINDER)
    assert sorted(r.payload["offset_minutes"] for r in reminders) == [30, 48 * 60]
    assert {r.due_at for r in reminders} == {NOW + timedelta(days=1),
                                             NOW + timedelta(days=3, minutes=-30)}


def test_nothing_scheduled_for_a_past_meeting(make, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW - timedelta(hours=1))
    attend(meeting, make.specialist())
    services.on_meeting_created(meeting)
    assert rows() == []


def test_reschedule_moves_pending_reminders_and_sends_an_update(meeting, make):
    person = make.specialist()
    attendance = attend(meeting, person)
    first = keyed()
    invitation = next(r for k, r in first.items() if k.startswith("invitation"))
    invitation.status = S.SENT  # the worker sent the first invitation
    db.session.commit()

    meeting.starts_at = START + timedelta(days=7)
    meeting.sequence += 1
    services.on_meeting_rescheduled(meeting)
    services.on_meeting_rescheduled(meeting)  # twice: nothing doubled
    db.session.commit()

    found = keyed()
    m, u, _a = meeting.id, person.id, attendance.id
    assert len(found) == 4
    day = found[f"meeting_reminder:m{m}:u{u}:1440"]
    assert day.id == first[f"meeting_reminder:m{m}:u{u}:1440"].id  # moved, not replaced
    assert day.due_at == START + timedelta(days=6)
    assert found[f"meeting_reminder:m{m}:u{u}:60"].due_at == START + timedelta(days=7, hours=-1)
    update = found[f"invitation:m{m}:u{u}:r0:s1"]
    assert update.payload == {"method": "REQUEST", "sequence": 1, "round": 0, "update": True}
    assert update.due_at == NOW


def test_reminder_sent_before_a_reschedule_is_scheduled_again(meeting, make, frozen_clock):
    person = make.specialist()
    attend(meeting, person)
    frozen_clock(START - timedelta(hours=23))
    for row in rows(kind=K.MEETING_REMINDER):
        if row.payload["offset_minutes"] == 1440:
            row.status = S.SENT
    db.session.commit()
    meeting.starts_at = START + timedelta(days=7)
    meeting.sequence = 1
    services.on_meeting_rescheduled(meeting)
    db.session.commit()
    found = keyed()
    again = found[f"meeting_reminder:m{meeting.id}:u{person.id}:1440:s1"]
    assert again.status == S.PENDING and again.due_at == START + timedelta(days=6)


def test_reschedule_earlier_cancels_reminders_now_past(meeting, make, frozen_clock):
    attend(meeting, make.specialist())
    meeting.starts_at = NOW + timedelta(hours=5)
    meeting.sequence = 1
    services.on_meeting_rescheduled(meeting)
    db.session.commit()
    by_offset = {r.payload["offset_minutes"]: r for r in rows(kind=K.MEETING_REMINDER)}
    assert by_offset[1440].status == S.CANCELLED
    assert by_offset[60].status == S.PENDING and by_offset[60].due_at == NOW + timedelta(hours=4)


def mark_invitations(person, status) -> None:
    """What the worker did with the person's invitations so far."""
    for row in rows(recipient_id=person.id, kind=K.INVITATION):
        row.status = status
    db.session.commit()


def test_cancel_meeting_cancels_pending_and_sends_cancel_to_those_invited(meeting, make):
    people = [make.specialist(), make.specialist(), make.specialist()]
    attendances = [attend(meeting, p) for p in people]
    mark_invitations(people[0], S.SENT)
    mark_invitations(people[2], S.FAILED)  # the invitation never reached their calendar
    meeting.status = MeetingStatus.CANCELLED
    meeting.sequence = 1
    services.on_meeting_cancelled(meeting)
    services.on_meeting_cancelled(meeting)
    db.session.commit()
    cancels = [r for r in rows() if r.dedup_key.startswith("calendar_cancel")]
    # Only the person whose invitation went out: nothing is in the others' calendars.
    assert [r.dedup_key for r in cancels] == [f"calendar_cancel:m{meeting.id}:u{people[0].id}:r0"]
    assert all(r.payload["method"] == "CANCEL" and r.status == S.PENDING for r in cancels)
    others = [r for r in rows() if r not in cancels and r.status not in (S.SENT, S.FAILED)]
    assert len(others) == 7 and all(r.status == S.CANCELLED for r in others)
    assert len(attendances) == 3


def test_removal_cancels_only_that_persons_rows(meeting, make):
    stays, goes = make.specialist(), make.specialist()
    attend(meeting, stays)
    gone = attend(meeting, goes)
    mark_invitations(goes, S.SENT)
    services.on_attendee_removed(gone)
    services.on_attendee_removed(gone)
    db.session.commit()
    mine = rows(recipient_id=goes.id)
    cancel = [r for r in mine if r.dedup_key.startswith("calendar_cancel")]
    assert len(cancel) == 1 and cancel[0].payload["reason"] == "removed"
    assert all(r.status in (S.CANCELLED, S.SENT) for r in mine if r not in cancel)
    assert all(r.status == S.PENDING for r in rows(recipient_id=stays.id))


def test_removed_before_the_invitation_went_out_gets_no_cancellation(meeting, make):
    person = make.specialist()
    gone = attend(meeting, person)  # the invitation is still pending
    services.on_attendee_removed(gone)
    db.session.commit()
    mine = rows(recipient_id=person.id)
    assert all(r.status == S.CANCELLED for r in mine)
    assert not [r for r in mine if r.dedup_key.startswith("calendar_cancel")]


def test_first_invited_after_an_edit_gets_an_invitation_not_an_update(meeting, make):
    first = make.specialist()
    attend(meeting, first)
    mark_invitations(first, S.SENT)
    meeting.location = "Room 9"
    meeting.sequence = 1
    services.on_meeting_rescheduled(meeting)
    db.session.commit()
    newcomer = make.specialist()
    attend(meeting, newcomer)
    [update] = rows(recipient_id=first.id, kind=K.INVITATION, status=S.PENDING)
    [invitation] = rows(recipient_id=newcomer.id, kind=K.INVITATION)
    assert (update.payload["sequence"], update.payload["update"]) == (1, True)
    # The meeting was edited before, but this person was never sent anything.
    assert (invitation.payload["sequence"], invitation.payload["update"]) == (1, False)
    from mdt.notifications.render import build_email, headline
    assert build_email(invitation)["Subject"].startswith("Invitation: ")
    assert build_email(update)["Subject"].startswith("Updated: ")
    body = build_email(invitation).get_body(("plain",)).get_content()
    assert "You are invited" in body and "replaces the earlier one" not in body
    with make_request_context():
        assert headline(invitation, "UTC")[0] == "Invitation"
        assert headline(update, "UTC")[0] == "Meeting changed"


def test_an_invitation_that_failed_is_not_updated_but_sent_afresh(meeting, make):
    person = make.specialist()
    attend(meeting, person)
    mark_invitations(person, S.FAILED)  # e.g. their mailbox refused it
    meeting.starts_at = START + timedelta(hours=1)
    meeting.sequence = 1
    services.on_meeting_rescheduled(meeting)
    db.session.commit()
    [again] = rows(recipient_id=person.id, kind=K.INVITATION, status=S.PENDING)
    assert again.payload["update"] is False


def test_person_removed_and_invited_again_is_invited_again(meeting, make):
    person = make.specialist()
    first = attend(meeting, person)
    rows()[0].status = S.SENT
    db.session.commit()
    services.on_attendee_removed(first)
    db.session.delete(first)
    db.session.commit()
    again = attend(meeting, person)
    pending = {r.dedup_key for r in rows(recipient_id=person.id, status=S.PENDING)}
    m, u = meeting.id, person.id
    assert f"calendar_cancel:m{m}:u{u}:r0" not in pending  # not sent after the new invitation
    assert len(keyed()) == 5
    assert f"invitation:m{m}:u{u}:r1:s0" in pending
    assert again.id is not None
    assert {f"meeting_reminder:m{m}:u{u}:1440", f"meeting_reminder:m{m}:u{u}:60"} <= pending


def _london_meeting(make, local_start):
    zone = ZoneInfo("Europe/London")
    series = make.series(time_zone="Europe/London", start_time=time(14, 0),
                         weekday=local_start.weekday())
    starts_at = local_start.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
    return make.meeting(series=series, starts_at=starts_at, occurrence_date=local_start.date())


@pytest.mark.parametrize("local_start", [
    # Weekly Thursday meetings before and after the change of Sun 25 Oct 2026.
    pytest.param(__import__("datetime").datetime(2026, 10, 22, 14, 0), id="BST"),
    pytest.param(__import__("datetime").datetime(2026, 10, 29, 14, 0), id="GMT"),
    # A Sunday meeting whose 24 h reminder falls before the change.
    pytest.param(__import__("datetime").datetime(2026, 10, 25, 14, 0), id="across-change"),
])
def test_dst_reminders_at_the_local_hour(make, frozen_clock, local_start):
    frozen_clock(utc(2026, 10, 1, 9, 0))
    meeting = _london_meeting(make, local_start)
    attend(meeting, make.specialist())
    zone = ZoneInfo("Europe/London")
    local = {r.payload["offset_minutes"]: r.due_at.astimezone(zone)
             for r in rows(kind=K.MEETING_REMINDER)}
    day_before = local_start.date() - timedelta(days=1)
    assert (local[1440].date(), local[1440].hour, local[1440].minute) == (day_before, 14, 0)
    assert (local[60].date(), local[60].hour) == (local_start.date(), 13)


def test_meeting_created_schedules_agenda_closing(meeting, make):
    coordinator, clinician = make.coordinator(), make.clinician()
    make.specialist()  # a specialist only is not told
    make.clinician(is_active=False)
    services.on_meeting_created(meeting)
    services.on_meeting_created(meeting)
    db.session.commit()
    closing = rows(kind=K.AGENDA_CLOSING)
    assert sorted(r.recipient_id for r in closing) == sorted([coordinator.id, clinician.id])
    # The series' cutoff is 24 h, the notice 24 h before it.
    assert {r.due_at for r in closing} == {START - timedelta(hours=48)}
    assert {r.dedup_key for r in closing} == {f"agenda_closing:m{meeting.id}:u{coordinator.id}",
                                              f"agenda_closing:m{meeting.id}:u{clinician.id}"}


def test_item_added_schedules_opinion_pending_for_core_specialists(meeting, make):
    team = make.core_team()
    radiologist = make.specialist(discipline=Discipline.RADIOLOGY)  # not a core discipline
    uninvited = make.specialist(discipline=Discipline.ORTHOPAEDICS)
    coordinator = make.coordinator()
    for person in [*team.values(), radiologist, coordinator]:
        attend(meeting, person)
    item = make.item(meeting=meeting)
    services.on_item_added(item)
    services.on_item_added(make.item(meeting=meeting))  # one row per person per meeting
    db.session.commit()
    pending = rows(kind=K.OPINION_PENDING)
    assert sorted(r.recipient_id for r in pending) == sorted(u.id for u in team.values())
    assert uninvited.id not in {r.recipient_id for r in pending}
    assert {r.due_at for r in pending} == {START - timedelta(hours=24)}
    # Someone invited after items exist is scheduled too.
    late = make.specialist(discipline=Discipline.MEDICAL_ONCOLOGY)
    attend(meeting, late)
    assert len(rows(kind=K.OPINION_PENDING, recipient_id=late.id)) == 1


def test_item_deferred_then_carried_over(meeting, make):
    referrer = make.clinician()
    item = make.item(meeting=meeting, case=make.case(referrer=referrer))
    item.status, item.status_reason = ItemStatus.DEFERRED, "Awaiting MRI"
    services.on_item_deferred(item)
    services.on_item_deferred(item)
    db.session.commit()
    [row] = rows(kind=K.CASE_DEFERRED)
    assert (row.recipient_id, row.case_id, row.due_at) == (referrer.id, item.case_id, NOW)
    later = make.meeting(series=meeting.series, starts_at=START + timedelta(days=7))
    new_item = make.item(meeting=later, case=item.case)
    services.on_item_deferred(item, new_item)
    db.session.commit()
    [row] = rows(kind=K.CASE_DEFERRED)  # still pending: the one message gains the new date
    assert row.payload == {"item_id": item.id, "new_item_id": new_item.id}


def test_item_deferred_after_first_message_sent_adds_carried_message(meeting, make):
    item = make.item(meeting=meeting)
    item.status, item.status_reason = ItemStatus.DEFERRED, "Awaiting MRI"
    services.on_item_deferred(item)
    rows()[0].status = S.SENT
    db.session.commit()
    new_item = make.item(meeting=make.meeting(series=meeting.series,
                                              starts_at=START + timedelta(days=7)),
                         case=item.case)
    services.on_item_deferred(item, new_item)
    db.session.commit()
    assert {r.dedup_key for r in rows(kind=K.CASE_DEFERRED)} == {
        f"case_deferred:i{item.id}", f"case_deferred:i{item.id}:to{new_item.id}"}


def test_item_withdrawn_cancels_rows_about_the_case(meeting, make):
    item = make.item(meeting=meeting)
    item.status, item.status_reason = ItemStatus.DEFERRED, "x"
    new_item = make.item(meeting=make.meeting(series=meeting.series,
                                              starts_at=START + timedelta(days=7)),
                         case=item.case)
    services.on_item_deferred(item, new_item)
    new_item.status = ItemStatus.WITHDRAWN
    services.on_item_withdrawn(new_item)
    db.session.commit()
    assert [r.status for r in rows(kind=K.CASE_DEFERRED)] == [S.CANCELLED]


def signed_consensus(make, meeting, *, referrer, responsible, actions=()) -> Consensus:
    item = make.item(meeting=meeting, case=make.case(referrer=referrer))
    consensus = Consensus(agenda_item=item, outcome=Outcome.AGREED, recommendation="SBRT",
                          responsible_clinician_id=responsible.id if responsible else None,
                          attendees_snapshot=[], was_quorate=True,
                          signed_by_id=referrer.id, signed_by_name=referrer.name,
                          signed_by_discipline=referrer.discipline, signed_at=NOW)
    with db.session.no_autoflush:
        consensus.actions = [ConsensusAction(description=d, owner_id=o.id if o else None,
                                             due_on=due) for d, o, due in actions]
        db.session.add(consensus)
    db.session.commit()
    return consensus


def test_consensus_signed_tells_both_clinicians_once(meeting, make):
    referrer, responsible = make.clinician(), make.clinician()
    consensus = signed_consensus(make, meeting, referrer=referrer, responsible=responsible)
    services.on_consensus_signed(consensus)
    services.on_consensus_signed(consensus)
    db.session.commit()
    found = {r.recipient_id: r for r in rows(kind=K.CONSENSUS_SIGNED)}
    assert set(found) == {referrer.id, responsible.id}
    assert found[responsible.id].payload["role"] == "responsible"
    assert found[referrer.id].payload["role"] == "referrer"
    assert all(r.case_id == consensus.agenda_item.case_id and r.due_at == NOW
               for r in found.values())


def test_consensus_same_person_gets_one(meeting, make):
    clinician = make.clinician()
    consensus = signed_consensus(make, meeting, referrer=clinician, responsible=clinician)
    services.on_consensus_signed(consensus)
    db.session.commit()
    [row] = rows(kind=K.CONSENSUS_SIGNED)
    assert row.payload["role"] == "responsible"


def test_actions_due_on_the_morning_in_the_owners_zone(meeting, make):
    owner = make.specialist(time_zone="Europe/London")
    no_zone = make.specialist()
    consensus = signed_consensus(make, meeting, referrer=make.clinician(), responsible=None,
                                 actions=[("Plan SBRT", owner, date(2026, 12, 14)),
                                          ("Bone protection", no_zone, date(2026, 12, 15)),
                                          ("No owner", None, date(2026, 12, 15)),
                                          ("No date", owner, None),
                                          ("Already late", owner, date(2026, 11, 1))])
    services.on_consensus_signed(consensus)
    services.on_consensus_signed(consensus)
    db.session.commit()
    a1, a2 = consensus.actions[0].id, consensus.actions[1].id
    due = {r.dedup_key: (r.recipient_id, r.due_at, r.payload["overdue"])
           for r in rows(kind=K.ACTION_DUE)}
    assert due == {
        f"action_due:a{a1}": (owner.id, utc(2026, 12, 14, 8, 0), False),
        f"action_overdue:a{a1}": (owner.id, utc(2026, 12, 15, 8, 0), True),
        # No zone of their own: the meeting's (Shanghai, UTC+8): 08:00 there is 00:00 UTC.
        f"action_due:a{a2}": (no_zone.id, utc(2026, 12, 15, 0, 0), False),
        f"action_overdue:a{a2}": (no_zone.id, utc(2026, 12, 16, 0, 0), True),
    }


def test_amendment_tells_both_clinicians(meeting, make):
    referrer, responsible = make.clinician(), make.clinician()
    consensus = signed_consensus(make, meeting, referrer=referrer, responsible=responsible)
    amendment = Amendment(consensus=consensus, author_id=referrer.id, created_at=NOW,
                          reason="Typo", correction="Read 8 Gy")
    db.session.add(amendment)
    db.session.flush()
    services.on_amendment_added(amendment)
    services.on_amendment_added(amendment)
    db.session.commit()
    assert sorted(r.recipient_id for r in rows(kind=K.AMENDMENT)) == sorted(
        [referrer.id, responsible.id])


def test_preferences_set_send_email_and_mandatory_kinds_stay_on(meeting, make):
    clinician = make.clinician()
    services.set_email_preferences(clinician, [K.AGENDA_CLOSING])  # all else off
    db.session.commit()
    prefs = services.email_preferences(clinician)
    assert prefs[K.INVITATION] is True and prefs[K.MEETING_REMINDER] is False
    attend(meeting, clinician)
    services.on_meeting_created(meeting)
    other = make.clinician()
    consensus = signed_consensus(make, meeting, referrer=clinician, responsible=other)
    services.on_consensus_signed(consensus)
    responsible_too = signed_consensus(make, meeting, referrer=other, responsible=clinician)
    services.on_consensus_signed(responsible_too)
    db.session.commit()
    sent = {(r.kind, r.payload.get("role")): r.send_email for r in rows(recipient_id=clinician.id)}
    assert sent == {(K.INVITATION, None): True, (K.MEETING_REMINDER, None): False,
                    (K.AGENDA_CLOSING, None): True, (K.CONSENSUS_SIGNED, "referrer"): False,
                    (K.CONSENSUS_SIGNED, "responsible"): True}


def test_hooks_never_commit(meeting, make):
    person = make.specialist()
    attendance = Attendance(meeting=meeting, user=person)
    db.session.add(attendance)
    db.session.flush()
    services.on_attendee_added(attendance)
    db.session.rollback()
    assert rows() == []


def test_unique_key_is_the_backstop(meeting, make):
    person = make.specialist()
    for _ in range(2):
        db.session.add(Notification(kind=K.INVITATION, recipient_id=person.id, due_at=NOW,
                                    dedup_key="same"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
