"""The meeting around a signed consensus is part of its record (issue 7, item 10).

Once an item of a meeting is signed, the meeting cannot be cancelled,
re-dated, re-chaired or moved, and a decided item's presenter cannot change;
mistakes are corrected with a recorded reason, shown on the meeting page and
the report. The consensus keeps its signer's name and discipline as they were
when signing. No meeting is rescheduled into the past.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mdt import clock
from mdt.audit.models import AuditEntry
from mdt.auth.models import Discipline
from mdt.decisions.models import Consensus
from mdt.errors import ImmutableError, InvalidError
from mdt.extensions import db
from mdt.meetings import services
from mdt.meetings.models import ItemStatus, Meeting, MeetingCorrection, MeetingStatus
from mdt.timezones import to_local

from .decisions_scene import build_scene, sign_agreed


@pytest.fixture
def signed(make):
    return sign_agreed(make)


def _meeting(s) -> Meeting:
    db.session.expire_all()
    return db.session.get(Meeting, s.meeting.id)


def _form(meeting: Meeting, *, starts_at=None, **overrides) -> dict[str, str]:
    """The meeting form's fields as the browser posts them, with ``overrides``."""
    local = to_local(starts_at or meeting.starts_at, meeting.time_zone)
    data = {"version": str(meeting.version), "day": local.date().isoformat(),
            "start_time": local.strftime("%H:%M"),
            "duration_minutes": str(meeting.duration_minutes),
            "location": meeting.location or "", "video_url": meeting.video_url or "",
            "chair_id": str(meeting.chair_id or "")}
    data.update({k: str(v) for k, v in overrides.items()})
    return data


def _edit(meeting: Meeting, **changes):
    values = dict(starts_at=meeting.starts_at, duration_minutes=meeting.duration_minutes,
                  location=meeting.location, video_url=meeting.video_url,
                  chair_id=meeting.chair_id)
    values.update(changes)
    return services.update_meeting(meeting, actor=None, expected_version=meeting.version,
                                   **values)


# --- frozen ---------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    lambda m, s: _edit(m, starts_at=clock.now() + timedelta(days=2)),
    lambda m, s: _edit(m, chair_id=s.radonc.id),
    lambda m, s: _edit(m, location="Another room"),
    lambda m, s: _edit(m, duration_minutes=30),
    lambda m, s: services.cancel_meeting(m, actor=None, reason="Holiday"),
], ids=["re-date", "re-chair", "move", "shorten", "cancel"])
def test_the_services_refuse_to_change_a_meeting_with_a_signed_item(signed, change):
    before = _meeting(signed)
    snapshot = (before.starts_at, before.chair_id, before.location, before.status)
    assert services.has_signed_items(before)
    with pytest.raises(ImmutableError, match="Decisions were signed at this meeting"):
        change(before, signed)
    db.session.rollback()
    after = _meeting(signed)
    assert (after.starts_at, after.chair_id, after.location, after.status) == snapshot


def test_the_edit_page_refuses_and_offers_a_correction_instead(client, signed, login_as):
    login_as(signed.coordinator)
    meeting = _meeting(signed)
    page = client.get(f"/meetings/{meeting.id}/edit").get_data(as_text=True)
    assert "Record a correction" in page and 'id="signed-notice"' in page
    assert "Cancel the meeting" not in page
    response = client.post(f"/meetings/{meeting.id}/edit", data=_form(
        meeting, starts_at=clock.now() + timedelta(days=1), chair_id=signed.radonc.id))
    assert response.status_code == 409
    assert "Decisions were signed at this meeting" in response.get_data(as_text=True)
    response = client.post(f"/meetings/{meeting.id}/cancel",
                           data={"reason": "Holiday", "version": str(meeting.version)})
    assert response.status_code == 409
    after = _meeting(signed)
    assert (after.status, after.starts_at, after.chair_id) == (
        MeetingStatus.SCHEDULED, meeting.starts_at, meeting.chair_id)
    case_page = client.get(f"/cases/{signed.item.case_id}").get_data(as_text=True)
    assert "Cancelled" not in case_page
    detail = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "Correct the meeting record" in detail and "Reschedule, re-chair" not in detail


def test_a_meeting_without_signatures_is_still_edited_and_cancelled(make, frozen_clock):
    s = build_scene(make)
    meeting = _meeting(s)
    assert not services.has_signed_items(meeting)
    _edit(meeting, location="Room 9", chair_id=s.radonc.id)
    services.cancel_meeting(meeting, actor=None, reason="Holiday")
    db.session.commit()
    assert (_meeting(s).location, _meeting(s).status) == ("Room 9", MeetingStatus.CANCELLED)


def test_a_decided_items_presenter_is_frozen(client, signed, make, login_as):
    item = signed.item
    with pytest.raises(ImmutableError, match="amendment"):
        services.update_item(item, actor=None, expected_version=item.version,
                             minutes_allotted=item.minutes_allotted,
                             presenter_id=signed.radonc.id)
    db.session.rollback()
    login_as(signed.coordinator)
    page = client.get(f"/items/{item.id}/edit").get_data(as_text=True)
    assert 'id="decided-notice"' in page and 'name="presenter_id"' not in page
    response = client.post(f"/items/{item.id}/edit", data={
        "version": str(item.version), "minutes_allotted": "10",
        "presenter_id": str(signed.radonc.id)})
    assert response.status_code == 409
    db.session.expire_all()
    assert db.session.get(type(item), item.id).presenter_id is None
    withdrawn = make.item(meeting=signed.meeting, status=ItemStatus.WITHDRAWN)
    with pytest.raises(ImmutableError, match="withdrawn"):
        services.update_item(withdrawn, actor=None, expected_version=withdrawn.version,
                             minutes_allotted=5, presenter_id=None)


def test_a_pending_item_on_the_same_meeting_can_still_be_edited(signed, make):
    pending = make.item(meeting=signed.meeting)
    services.update_item(pending, actor=None, expected_version=pending.version,
                         minutes_allotted=25, presenter_id=signed.radonc.id)
    db.session.commit()
    assert (pending.minutes_allotted, pending.presenter_id) == (25, signed.radonc.id)


# --- corrections -----------------------------------------------------------------------

def test_a_correction_changes_the_record_and_is_shown_with_it(client, signed, login_as):
    login_as(signed.coordinator)
    meeting = _meeting(signed)
    was_local = to_local(meeting.starts_at, meeting.time_zone)
    earlier = meeting.starts_at - timedelta(minutes=30)
    response = client.post(f"/meetings/{meeting.id}/corrections", data={
        **_form(meeting, starts_at=earlier, chair_id=signed.medonc.id),
        "reason": "The meeting began early; Dr Medonc chaired it."})
    assert response.status_code == 302
    after = _meeting(signed)
    assert (after.starts_at, after.chair_id) == (earlier.replace(second=0), signed.medonc.id)
    correction = db.session.scalars(select(MeetingCorrection)).one()
    assert correction.author_id == signed.coordinator.id
    assert [c["field"] for c in correction.changes] == ["starts_at", "chair_id"]
    assert correction.changes[1]["from"] == "Chair Person (Radiology)"
    assert was_local.strftime("%H:%M") in correction.changes[0]["from"]
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "meeting.corrected")).all()
    assert sorted(e.case_id or 0 for e in entries) == [0, signed.item.case_id]
    for page in (f"/cases/{signed.item.case_id}/report", f"/meetings/{meeting.id}",
                 f"/items/{signed.item.id}"):
        html = client.get(page).get_data(as_text=True)
        assert "Meeting record corrected" in html, page
        assert "The meeting began early; Dr Medonc chaired it." in html, page
        assert "Chair: Chair Person (Radiology) → " in html, page


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"reason": ""}, "reason", "Say why the record is corrected."),
    ({"reason": "Typo"}, None, "Nothing was corrected"),
    ({"reason": "Later", "_later": True}, "day", "cannot have started later"),
    ({"reason": "Nobody", "duration_minutes": "0"}, "duration_minutes", "between 1 and"),
], ids=["no-reason", "no-change", "after-signing", "duration"])
def test_a_correction_is_checked_and_nothing_is_lost(client, signed, login_as, overrides,
                                                     field, message):
    login_as(signed.coordinator)
    meeting = _meeting(signed)
    later = overrides.pop("_later", False)
    data = {**_form(meeting, starts_at=clock.now() + timedelta(hours=1) if later else None),
            **overrides}
    response = client.post(f"/meetings/{meeting.id}/corrections", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code in (200, 400)
    assert message.lower() in html.lower()
    if field is not None:
        assert f'id="{field}-err"' in html
    assert db.session.scalars(select(MeetingCorrection)).all() == []
    assert _meeting(signed).starts_at == meeting.starts_at


def test_corrections_are_only_for_meetings_with_signed_decisions(make):
    s = build_scene(make)
    meeting = _meeting(s)
    with pytest.raises(InvalidError, match="edit it instead"):
        services.correct_meeting(meeting, actor=s.coordinator, reason="Why not",
                                 expected_version=meeting.version,
                                 starts_at=meeting.starts_at, duration_minutes=45,
                                 location=None, video_url=None, chair_id=None)


def test_corrections_are_append_only_in_the_database(signed):
    meeting = _meeting(signed)
    services.correct_meeting(meeting, actor=signed.coordinator, reason="Room was wrong",
                             expected_version=meeting.version, starts_at=meeting.starts_at,
                             duration_minutes=meeting.duration_minutes, location="Room 12",
                             video_url=meeting.video_url, chair_id=meeting.chair_id)
    db.session.commit()
    for statement in ("UPDATE meeting_corrections SET reason = 'x'",
                      "DELETE FROM meeting_corrections"):
        with pytest.raises(IntegrityError, match="meeting corrections are append-only"):
            db.session.execute(sa.text(statement))
        db.session.rollback()
    assert db.session.scalars(select(MeetingCorrection.reason)).all() == ["Room was wrong"]


# --- the signer as at signing -------------------------------------------------------------

def test_the_consensus_keeps_the_signers_name_and_discipline(client, signed, login_as):
    consensus = db.session.get(Consensus, signed.consensus_id)
    assert (consensus.signed_by_name, consensus.signed_by_discipline) == (
        "Chair Person", Discipline.RADIOLOGY)
    chair = signed.chair
    chair.name, chair.discipline = "Renamed Later", Discipline.OTHER
    db.session.commit()
    login_as(signed.referrer)
    for page in (f"/cases/{signed.item.case_id}/report", f"/items/{signed.item.id}", "/"):
        html = client.get(page).get_data(as_text=True)
        assert "by Chair Person" in html, page
        assert "by Renamed Later" not in html, page
    report = client.get(f"/cases/{signed.item.case_id}/report").get_data(as_text=True)
    assert "by Chair Person (Radiology)" in report


# --- never into the past ---------------------------------------------------------------

def test_a_meeting_cannot_be_rescheduled_into_the_past(client, make, login_as):
    s = build_scene(make)
    meeting = _meeting(s)
    with pytest.raises(InvalidError) as refused:
        _edit(meeting, starts_at=clock.now() - timedelta(hours=2))
    assert "day" in refused.value.fields
    db.session.rollback()
    login_as(s.coordinator)
    response = client.post(f"/meetings/{meeting.id}/edit", data=_form(
        meeting, starts_at=clock.now() - timedelta(days=1), location="Room 9"))
    html = response.get_data(as_text=True)
    assert 'id="day-err">Choose a date and time that are still ahead.' in html
    assert 'value="Room 9"' in html
    after = _meeting(s)
    assert (after.starts_at, after.location) == (meeting.starts_at, meeting.location)


def test_a_meeting_in_progress_keeps_its_start_when_only_the_place_changes(make, login_as,
                                                                           client):
    s = build_scene(make, started=True)
    meeting = _meeting(s)
    login_as(s.coordinator)
    response = client.post(f"/meetings/{meeting.id}/edit",
                           data=_form(meeting, location="Room 9"))
    assert response.status_code == 302
    assert _meeting(s).location == "Room 9"
