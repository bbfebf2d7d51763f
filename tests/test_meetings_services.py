"""Meeting services: generation across DST, cutoff, agenda rules, carry-over, quorum."""
from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from mdt import timezones
from mdt.audit.models import AuditEntry
from mdt.auth.models import Discipline
from mdt.cases.models import CaseStatus
from mdt.decisions.models import Consensus, Opinion, Stance
from mdt.errors import ConflictError, ForbiddenError, InvalidError
from mdt.extensions import db
from mdt.meetings import services
from mdt.meetings.models import (
    Attendance,
    ItemStatus,
    Meeting,
    MeetingStatus,
    Presence,
    Response,
    Triage,
)
from mdt.meetings.services import series as series_services

from .factories import utc

# Monday 2 November 2026, 10:00 in Shanghai.
NOW = utc(2026, 11, 2, 2, 0)


@pytest.fixture
def hooks(monkeypatch):
    """Record the notification hooks the meetings services call."""
    from mdt.notifications import services as notify

    calls: list[tuple] = []
    for name in ("on_meeting_created", "on_meeting_rescheduled", "on_meeting_cancelled",
                 "on_attendee_added", "on_attendee_removed", "on_item_added",
                 "on_item_deferred", "on_item_withdrawn"):
        monkeypatch.setattr(notify, name, lambda *args, _n=name: calls.append((_n, *args)))
    return calls


def named(calls, name):
    return [c[1:] for c in calls if c[0] == name]


def audit_actions(case_id):
    return [e.action for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.id))]


# --- generation and time ------------------------------------------------------

def test_generate_meetings_in_utc_and_idempotent(make, frozen_clock, hooks):
    frozen_clock(NOW)
    series = make.series(weekday=3, start_time=time(14, 0), time_zone="Asia/Shanghai")
    created = services.generate_meetings(series, weeks=8)
    db.session.commit()
    assert len(created) == 8
    first = created[0]
    assert first.occurrence_date == date(2026, 11, 5)  # the Thursday after NOW
    assert first.starts_at == utc(2026, 11, 5, 6, 0)  # 14:00 CST is 06:00 UTC
    assert [m.occurrence_date.weekday() for m in created] == [3] * 8
    assert [m.id for m, in named(hooks, "on_meeting_created")] == [m.id for m in created]
    assert services.generate_meetings(series, weeks=8) == []
    assert len(db.session.scalars(select(Meeting)).all()) == 8


def test_generation_skips_todays_meeting_once_it_started(make, frozen_clock, hooks):
    frozen_clock(utc(2026, 11, 5, 7, 0))  # Thursday 15:00 Shanghai, after the 14:00 start
    series = make.series(weekday=3, start_time=time(14, 0))
    created = services.generate_meetings(series, weeks=2)
    assert [m.occurrence_date for m in created] == [date(2026, 11, 12)]


def test_series_keeps_local_time_across_the_end_of_summer_time(make, frozen_clock, hooks):
    frozen_clock(utc(2026, 10, 12, 9, 0))  # London summer time ends on 25 October 2026
    series = make.series(weekday=3, start_time=time(14, 0), time_zone="Europe/London")
    created = {m.occurrence_date: m for m in services.generate_meetings(series, weeks=4)}
    before, after = created[date(2026, 10, 22)], created[date(2026, 10, 29)]
    assert before.starts_at == utc(2026, 10, 22, 13, 0)  # BST, UTC+1
    assert after.starts_at == utc(2026, 10, 29, 14, 0)  # GMT, UTC+0
    for meeting in (before, after):
        local = meeting.starts_at.astimezone(timezones.zone("Europe/London"))
        assert (local.hour, local.minute) == (14, 0)


def test_create_series_validates_zone_and_generates(make, frozen_clock, hooks):
    frozen_clock(NOW)
    with pytest.raises(InvalidError) as exc:
        services.create_series(name="X", weekday=1, start_time=time(8, 0), time_zone="Mars/Base",
                               actor=None)
    assert "time_zone" in exc.value.fields
    db.session.rollback()
    series = services.create_series(name="Bone metastasis MDT", weekday=1, start_time=time(8, 0),
                                    time_zone="Asia/Shanghai", actor=None)
    db.session.commit()
    assert series.core_disciplines == ["radiation_oncology", "orthopaedics",
                                       "interventional_radiology", "medical_oncology"]
    assert series.cutoff_hours == 24 and series.reminder_offsets_minutes == [1440, 60]
    assert len(series.meetings) == 8


def test_cutoff_and_has_started(make, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(hours=30))
    assert services.cutoff_at(meeting) == NOW + timedelta(hours=6)
    assert not services.has_started(meeting)
    frozen_clock(NOW + timedelta(hours=30))
    assert services.has_started(meeting)


# --- meetings -----------------------------------------------------------------

def test_reschedule_bumps_sequence_and_calls_hook(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(days=3))
    new_start = meeting.starts_at + timedelta(hours=2)
    services.update_meeting(meeting, expected_version=meeting.version, starts_at=new_start,
                            duration_minutes=90, location=meeting.location, video_url=None,
                            chair_id=None, actor=None)
    db.session.commit()
    assert meeting.starts_at == new_start and meeting.sequence == 1
    assert named(hooks, "on_meeting_rescheduled") == [(meeting,)]
    # The place or the video link alone: calendars show them, so attendees are updated too.
    services.update_meeting(meeting, expected_version=meeting.version, starts_at=new_start,
                            duration_minutes=90, location="Room 9", video_url=None, chair_id=None,
                            actor=None)
    assert meeting.sequence == 2 and len(named(hooks, "on_meeting_rescheduled")) == 2
    services.update_meeting(meeting, expected_version=meeting.version, starts_at=new_start,
                            duration_minutes=90, location="Room 9",
                            video_url="https://video.example/mdt", chair_id=None, actor=None)
    assert meeting.sequence == 3 and len(named(hooks, "on_meeting_rescheduled")) == 3
    chair = make.specialist()
    services.update_meeting(meeting, expected_version=meeting.version, starts_at=new_start,
                            duration_minutes=90, location="Room 9",
                            video_url="https://video.example/mdt", chair_id=chair.id, actor=None)
    assert len(named(hooks, "on_meeting_rescheduled")) == 3  # no calendar shows the chair


def test_stale_meeting_edit_is_a_conflict(make, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting()
    stale = meeting.version
    meeting.location = "Room 5"
    db.session.commit()
    with pytest.raises(ConflictError, match="Someone else changed this meeting"):
        services.update_meeting(meeting, expected_version=stale, starts_at=meeting.starts_at,
                                duration_minutes=60, location="Room 7", video_url=None,
                                chair_id=None, actor=None)


def test_cancel_needs_a_reason_and_calls_hook(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting()
    with pytest.raises(InvalidError):
        services.cancel_meeting(meeting, reason="  ", actor=None)
    services.cancel_meeting(meeting, reason="Public holiday", actor=None)
    assert meeting.status == MeetingStatus.CANCELLED and meeting.cancel_reason == "Public holiday"
    assert named(hooks, "on_meeting_cancelled") == [(meeting,)]
    with pytest.raises(InvalidError):
        services.cancel_meeting(meeting, reason="Again", actor=None)


# --- adding to the agenda -----------------------------------------------------

def test_coordinator_adds_after_cutoff_as_late(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(hours=2))
    case = make.case()
    item = services.add_item(meeting, case, actor=make.coordinator(), minutes_allotted=15)
    db.session.commit()
    assert item.is_late and item.position == 1 and item.minutes_allotted == 15
    assert named(hooks, "on_item_added") == [(item,)]
    assert audit_actions(case.id) == ["agenda_item.added"]


def test_specialist_and_referrer_add_only_before_cutoff(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(days=2))
    referrer = make.clinician()
    own, other = make.case(referrer=referrer), make.case()
    first = services.add_item(meeting, own, actor=referrer)
    second = services.add_item(meeting, other, actor=make.specialist())
    assert (first.is_late, second.is_late) == (False, False)
    assert (first.position, second.position) == (1, 2)
    with pytest.raises(ForbiddenError, match="referring clinician"):
        services.add_item(meeting, make.case(), actor=referrer)
    frozen_clock(services.cutoff_at(meeting))
    with pytest.raises(ForbiddenError, match="cutoff"):
        services.add_item(meeting, make.case(), actor=make.specialist())


def test_add_refuses_duplicates_closed_cases_and_cancelled_meetings(make, frozen_clock):
    frozen_clock(NOW)
    coordinator, meeting = make.coordinator(), make.meeting()
    case = make.case()
    services.add_item(meeting, case, actor=coordinator)
    with pytest.raises(InvalidError, match="already on"):
        services.add_item(meeting, case, actor=coordinator)
    with pytest.raises(InvalidError, match="open case"):
        services.add_item(meeting, make.case(status=CaseStatus.CLOSED), actor=coordinator)
    cancelled = make.meeting(status=MeetingStatus.CANCELLED, cancel_reason="Holiday")
    with pytest.raises(InvalidError, match="cancelled"):
        services.add_item(cancelled, make.case(), actor=coordinator)


# --- triage, status, removal, order -------------------------------------------

def test_unready_case_cannot_be_triaged_for_discussion(make, frozen_clock):
    frozen_clock(NOW)
    item = make.item(case=make.case(ready=False), triage=None)
    with pytest.raises(InvalidError) as exc:
        services.triage_item(item, Triage.FOR_DISCUSSION, actor=None)
    assert "ECOG performance status recorded" in exc.value.message
    assert "At least one imaging reference" in exc.value.message
    services.triage_item(item, Triage.STANDARD_OF_CARE, actor=None)
    assert item.triage == Triage.STANDARD_OF_CARE
    ready = make.item(triage=None)
    services.triage_item(ready, "for_discussion", actor=None)
    assert ready.triage == Triage.FOR_DISCUSSION
    assert "agenda_item.triaged" in audit_actions(ready.case_id)


def test_status_transitions(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(days=1))
    deferred, withdrawn, discussed = (make.item(meeting=meeting) for _ in range(3))
    with pytest.raises(InvalidError, match="reason"):
        services.set_item_status(deferred, ItemStatus.DEFERRED, "", actor=None)
    services.set_item_status(deferred, ItemStatus.DEFERRED, "Awaiting MRI", actor=None)
    services.set_item_status(withdrawn, "withdrawn", actor=None)
    assert deferred.status_reason == "Awaiting MRI" and withdrawn.status_reason is None
    assert named(hooks, "on_item_deferred") == [(deferred,)]
    assert named(hooks, "on_item_withdrawn") == [(withdrawn,)]
    with pytest.raises(InvalidError, match="started"):
        services.set_item_status(discussed, ItemStatus.DISCUSSED, actor=None)
    frozen_clock(meeting.starts_at)
    services.set_item_status(discussed, ItemStatus.DISCUSSED, actor=None)
    with pytest.raises(InvalidError, match="already"):
        services.set_item_status(discussed, ItemStatus.WITHDRAWN, actor=None)
    assert services.is_item_decided(discussed)
    assert "agenda_item.deferred" in audit_actions(deferred.case_id)


def test_remove_pending_item_renumbers_and_audits(make, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting()
    first, second, third = (make.item(meeting=meeting) for _ in range(3))
    services.remove_item(second, actor=None)
    db.session.commit()
    db.session.expire_all()
    assert [(i.id, i.position) for i in meeting.items] == [(first.id, 1), (third.id, 2)]
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "agenda_item.removed")).one()
    assert entry.case_id == second.case_id and entry.data["meeting_id"] == meeting.id


def test_remove_refuses_items_with_proposals_or_decided(make, frozen_clock):
    frozen_clock(NOW)
    with_proposal = make.item()
    make.proposal(item=with_proposal)
    with pytest.raises(InvalidError, match="Withdraw it instead"):
        services.remove_item(with_proposal, actor=None)
    deferred = make.item(status=ItemStatus.DEFERRED, status_reason="Awaiting biopsy")
    with pytest.raises(InvalidError, match="pending"):
        services.remove_item(deferred, actor=None)


def test_move_item_up_and_down(make, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting()
    a, b, c = (make.item(meeting=meeting) for _ in range(3))
    assert services.move_item(c, "up", actor=None)
    assert [i.id for i in sorted(meeting.items, key=lambda i: i.position)] == [a.id, c.id, b.id]
    assert services.move_item(a, "down", actor=None)
    assert [i.id for i in sorted(meeting.items, key=lambda i: i.position)] == [c.id, a.id, b.id]
    assert not services.move_item(c, "up", actor=None)
    with pytest.raises(InvalidError):
        services.move_item(a, "sideways", actor=None)


def test_stale_item_edit_is_a_conflict(make, frozen_clock):
    frozen_clock(NOW)
    item = make.item()
    stale = item.version
    services.update_item(item, expected_version=stale, minutes_allotted=20, presenter_id=None,
                         actor=None)
    db.session.commit()
    with pytest.raises(ConflictError):
        services.update_item(item, expected_version=stale, minutes_allotted=5, presenter_id=None,
                             actor=None)


# --- carry-over ---------------------------------------------------------------

def _two_meetings(make, series=None):
    series = series or make.series()
    first = make.meeting(series=series, starts_at=NOW + timedelta(days=1))
    second = make.meeting(series=series, starts_at=NOW + timedelta(days=8))
    return first, second


def test_carry_over_keeps_proposals_and_opinions(make, frozen_clock, hooks):
    frozen_clock(NOW)
    first, second = _two_meetings(make)
    item = make.item(meeting=first)
    proposal = make.proposal(item=item)
    opinion = make.opinion(proposal, make.specialist(discipline=Discipline.ORTHOPAEDICS),
                           Stance.OBJECT, "Unstable spine: fix first")
    services.set_item_status(item, ItemStatus.DEFERRED, "Awaiting MRI", actor=None)
    new_item = services.carry_over(item, actor=make.coordinator())
    db.session.commit()
    db.session.expire_all()
    assert new_item.meeting_id == second.id and new_item.carried_from_id == item.id
    assert item.carried_to_id == new_item.id and item.status == ItemStatus.DEFERRED
    assert [p.id for p in new_item.proposals] == [proposal.id] and item.proposals == []
    assert db.session.get(Opinion, opinion.id).proposal.agenda_item_id == new_item.id
    assert (new_item.triage, new_item.position) == (item.triage, 1)
    assert named(hooks, "on_item_deferred")[-1] == (item, new_item)
    assert "agenda_item.carried_over" in audit_actions(item.case_id)
    with pytest.raises(InvalidError, match="already carried"):
        services.carry_over(item, actor=make.coordinator())


def test_not_reached_item_is_carried_after_the_meeting(make, frozen_clock, hooks):
    frozen_clock(NOW)
    first, _ = _two_meetings(make)
    item = make.item(meeting=first)
    with pytest.raises(InvalidError, match="deferred"):
        services.carry_over(item, actor=make.coordinator())
    frozen_clock(first.ends_at)
    new_item = services.carry_over(item, actor=make.coordinator())
    assert item.status == ItemStatus.DEFERRED and item.status_reason == services.NOT_REACHED
    assert new_item.meeting_id != first.id


def test_carry_over_skips_cancelled_and_generates_the_next_meeting(make, frozen_clock, hooks):
    frozen_clock(NOW)
    series = make.series(weekday=3, start_time=time(14, 0))
    only = make.meeting(series=series, starts_at=utc(2026, 11, 5, 6, 0))
    make.meeting(series=series, starts_at=utc(2026, 11, 12, 6, 0), status=MeetingStatus.CANCELLED,
                 cancel_reason="Holiday")
    item = make.item(meeting=only, status=ItemStatus.DEFERRED, status_reason="Awaiting MRI")
    new_item = services.carry_over(item, actor=make.coordinator())
    assert new_item.meeting.occurrence_date == date(2026, 11, 19)
    assert named(hooks, "on_meeting_created")


def _signed(item, chair, outcome, **kw):
    db.session.add(Consensus(agenda_item=item, outcome=outcome, attendees_snapshot=[],
                             was_quorate=True, signed_by=chair, signed_by_name=chair.name,
                             signed_by_discipline=chair.discipline, signed_at=NOW, **kw))
    db.session.commit()


def test_decided_item_cannot_be_carried(make, frozen_clock):
    frozen_clock(NOW)
    first, _ = _two_meetings(make)
    item = make.item(meeting=first, status=ItemStatus.DISCUSSED)
    _signed(item, make.specialist(), "agreed", recommendation="SBRT")
    with pytest.raises(InvalidError, match="decided"):
        services.carry_over(item, actor=make.coordinator())
    assert services.is_item_decided(item)
    assert not services.can_carry_over(item)


def test_item_signed_as_deferred_is_carried_with_its_proposals(make, frozen_clock, hooks):
    frozen_clock(NOW)
    first, second = _two_meetings(make)
    item = make.item(meeting=first, status=ItemStatus.DEFERRED, status_reason="Needs MRI")
    proposal = make.proposal(item=item)
    _signed(item, make.specialist(), "deferred", reason="Needs MRI")
    assert services.can_carry_over(item)
    new_item = services.carry_over(item, actor=make.coordinator())
    db.session.commit()
    db.session.expire_all()
    assert new_item.meeting_id == second.id
    assert [p.id for p in new_item.proposals] == [proposal.id]
    assert item.consensus.outcome.value == "deferred"  # the signed record is untouched


# --- attendance and quorum ----------------------------------------------------

def test_invite_core_team_is_idempotent(make, frozen_clock, hooks):
    frozen_clock(NOW)
    chair = make.coordinator()
    team = make.core_team()
    make.specialist(discipline=Discipline.PATHOLOGY)  # not core
    make.specialist(discipline=Discipline.ORTHOPAEDICS, is_active=False)
    meeting = make.meeting(chair=chair)
    added = services.invite_core_team(meeting, actor=None)
    db.session.commit()
    assert {a.user_id for a in added} == {chair.id} | {u.id for u in team.values()}
    assert len(named(hooks, "on_attendee_added")) == 5
    assert services.invite_core_team(meeting, actor=None) == []
    assert services.invite(meeting, chair, actor=None) is None


def test_remove_attendee_calls_hook_and_audits(make, frozen_clock, hooks):
    frozen_clock(NOW)
    meeting = make.meeting()
    attendance = services.invite(meeting, make.specialist(), actor=None)
    db.session.commit()
    services.remove_attendee(attendance, actor=None)
    db.session.commit()
    assert named(hooks, "on_attendee_removed") == [(attendance,)]
    assert db.session.scalars(select(Attendance)).all() == []
    assert db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action == "attendance.removed")).one()


def test_respond_and_record_presence(make, frozen_clock):
    frozen_clock(NOW)
    chair, person, other = make.specialist(), make.specialist(), make.specialist()
    meeting = make.meeting(chair=chair, starts_at=NOW + timedelta(days=2))
    attendance = make.attendance(meeting, person, present=False, response=Response.INVITED)
    with pytest.raises(ForbiddenError):
        services.respond(attendance, other, Response.ACCEPTED)
    services.respond(attendance, person, "apologies")
    assert attendance.response == Response.APOLOGIES
    with pytest.raises(InvalidError, match="day of the meeting"):
        services.record_presence(attendance, chair, Presence.PRESENT)
    frozen_clock(meeting.starts_at - timedelta(hours=1))
    with pytest.raises(ForbiddenError):
        services.record_presence(attendance, other, Presence.PRESENT)
    services.record_presence(attendance, chair, Presence.PRESENT)
    assert attendance.presence == Presence.PRESENT


def test_quorum_lists_present_and_missing_disciplines(make, frozen_clock):
    frozen_clock(NOW)
    team = make.core_team()
    meeting = make.meeting()
    make.attendance(meeting, team[Discipline.RADIATION_ONCOLOGY])
    make.attendance(meeting, team[Discipline.ORTHOPAEDICS])
    make.attendance(meeting, team[Discipline.MEDICAL_ONCOLOGY], present=False)
    make.attendance(meeting, make.specialist(discipline=Discipline.PATHOLOGY))
    q = services.quorum(meeting)
    assert not q.is_quorate
    assert q.present_disciplines == [Discipline.RADIATION_ONCOLOGY, Discipline.ORTHOPAEDICS]
    assert q.missing_disciplines == [Discipline.INTERVENTIONAL_RADIOLOGY,
                                     Discipline.MEDICAL_ONCOLOGY]
    assert len(q.present_attendees) == 3
    make.attendance(meeting, team[Discipline.INTERVENTIONAL_RADIOLOGY])
    absent = db.session.scalars(select(Attendance).where(
        Attendance.user_id == team[Discipline.MEDICAL_ONCOLOGY].id)).one()
    absent.presence = Presence.PRESENT
    db.session.commit()
    db.session.expire_all()
    assert services.quorum(meeting).is_quorate


def test_upcoming_meetings_for(make, frozen_clock):
    frozen_clock(NOW)
    person = make.specialist()
    series = make.series()
    later = make.meeting(series=series, starts_at=NOW + timedelta(days=8))
    sooner = make.meeting(series=series, starts_at=NOW + timedelta(days=1))
    past = make.meeting(series=series, starts_at=NOW - timedelta(days=6))
    cancelled = make.meeting(series=series, starts_at=NOW + timedelta(days=15),
                             status=MeetingStatus.CANCELLED, cancel_reason="Holiday")
    not_invited = make.meeting(series=series, starts_at=NOW + timedelta(days=22))
    for meeting in (later, sooner, past, cancelled):
        make.attendance(meeting, person, present=False)
    assert not_invited.id
    assert [m.id for m in services.upcoming_meetings_for(person, 5)] == [sooner.id, later.id]
    assert [m.id for m in services.upcoming_meetings_for(person, 1)] == [sooner.id]


def test_list_meetings_keeps_a_meeting_in_progress_upcoming(make, frozen_clock):
    frozen_clock(NOW)
    series = make.series()
    running = make.meeting(series=series, starts_at=NOW - timedelta(minutes=30))  # 90 min long
    over = make.meeting(series=series, starts_at=NOW - timedelta(hours=3))
    old = make.meeting(series=series, starts_at=NOW - timedelta(days=7))
    soon = make.meeting(series=series, starts_at=NOW + timedelta(days=2))
    make.item(meeting=soon)
    make.item(meeting=soon)
    listing = services.list_meetings()
    assert [m.id for m in listing.upcoming] == [running.id, soon.id]
    assert [m.id for m in listing.past] == [over.id, old.id]
    assert listing.item_counts == {soon.id: 2}


def test_generating_meetings_at_the_same_moment_as_someone_else_is_a_conflict(
        make, frozen_clock, monkeypatch):
    """The loser of two racing generate requests gets a clear conflict, not a server error."""
    frozen_clock(NOW)
    series = make.series()
    assert services.generate_meetings(series)
    db.session.commit()
    # The racing request checked for existing meetings before the other one committed.
    monkeypatch.setattr(series_services, "_existing_occurrences", lambda series, dates: set())
    with pytest.raises(ConflictError, match="someone else"):
        services.generate_meetings(series)
