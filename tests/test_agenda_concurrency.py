"""Two coordinators adding cases to one agenda at the same moment (issue 7, item 12).

Each round, two real requests (one test client each, so their own app context
and database session) are released together by a barrier; the meeting has its
core team invited, so both requests also schedule the same opinion-pending
rows. Every round must end with both cases on the agenda at positions 1 and 2,
and no request may answer 5xx. ``MDT_TEST_CONCURRENT_ROUNDS`` sets how many
rounds (20 by default); the figures are printed (``pytest -s`` shows them).
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mdt import clock
from mdt.extensions import db
from mdt.meetings import services
from mdt.meetings.models import AgendaItem
from mdt.notifications import services as notify
from mdt.notifications.models import Notification, NotificationKind

ROUNDS = int(os.environ.get("MDT_TEST_CONCURRENT_ROUNDS", "20"))


def _post_together(clients, paths_and_data) -> list[int]:
    """POST each (path, data) from its own client in its own thread, released together."""
    barrier = threading.Barrier(len(clients))
    statuses: list[int | None] = [None] * len(clients)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        path, data = paths_and_data[index]
        try:
            barrier.wait(timeout=10)
            statuses[index] = clients[index].post(path, data=data).status_code
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return [s if s is not None else 0 for s in statuses]


def _positions(meeting_id: int) -> list[int]:
    db.session.expire_all()
    return sorted(db.session.scalars(
        select(AgendaItem.position).where(AgendaItem.meeting_id == meeting_id)))


def test_two_coordinators_adding_at_once_both_succeed_with_distinct_positions(app, make,
                                                                              login_as):
    team = list(make.core_team().values())
    clients = [login_as(make.coordinator(), on=app.test_client()) for _ in range(2)]
    figures: Counter[str] = Counter()
    for _ in range(ROUNDS):
        meeting = make.meeting(starts_at=clock.now() + timedelta(days=3))
        for specialist in team:
            make.attendance(meeting, specialist)
        cases = [make.case(), make.case()]
        statuses = _post_together(clients, [
            (f"/meetings/{meeting.id}/items/new",
             {"case_id": str(case.id), "minutes_allotted": "10", "presenter_id": ""})
            for case in cases])
        positions = _positions(meeting.id)
        figures["rounds"] += 1
        figures["duplicate positions"] += len(positions) != len(set(positions))
        figures["5xx answers"] += sum(s >= 500 for s in statuses)
        figures["items lost"] += 2 - len(positions)
    print(f"\nconcurrent agenda additions on {db.engine.dialect.name}: {dict(figures)}")
    assert figures["duplicate positions"] == 0, figures
    assert figures["5xx answers"] == 0, figures
    assert figures["items lost"] == 0, figures


def test_positions_are_unique_in_the_database(make):
    meeting = make.meeting()
    make.item(meeting=meeting, position=1)
    db.session.add(AgendaItem(meeting=meeting, case=make.case(), position=1))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    assert _positions(meeting.id) == [1]


def test_a_lost_race_on_the_position_is_a_conflict_not_a_500(app, make, login_as,
                                                              monkeypatch):
    """Deterministic: the position computed is taken by the time the row is inserted."""
    meeting = make.meeting()
    make.item(meeting=meeting)
    monkeypatch.setattr("mdt.meetings.services.agenda.next_position", lambda _meeting: 1)
    response = login_as(make.coordinator()).post(
        f"/meetings/{meeting.id}/items/new",
        data={"case_id": str(make.case().id), "minutes_allotted": "10", "presenter_id": ""})
    assert response.status_code == 409
    assert "at the same moment" in response.get_data(as_text=True)
    assert _positions(meeting.id) == [1]


def test_a_notification_key_taken_meanwhile_is_kept_once(app, make, monkeypatch):
    """Deterministic: another request commits the same de-duplication key between our
    look-up and our insert (what two simultaneous additions do on PostgreSQL)."""
    from mdt.notifications.services import rows

    user, meeting = make.specialist(), make.meeting()
    key = f"opinion_pending:m{meeting.id}:u{user.id}"
    due = clock.now() + timedelta(hours=1)
    real_find, raced = rows.find_row, []

    def find_after_the_other_request(wanted: str):
        if wanted == key and not raced:
            raced.append(wanted)
            with app.app_context():  # the other request: its own session, committed
                notify.schedule(NotificationKind.OPINION_PENDING, user.id, key, due,
                                meeting_id=meeting.id)
                db.session.commit()
            return None
        return real_find(wanted)

    monkeypatch.setattr(rows, "find_row", find_after_the_other_request)
    item = make.item(meeting=meeting)
    notify.schedule(NotificationKind.OPINION_PENDING, user.id, key, due, meeting_id=meeting.id)
    db.session.commit()
    assert raced == [key]
    db.session.expire_all()
    assert len(db.session.scalars(select(Notification).where(
        Notification.dedup_key == key)).all()) == 1
    assert db.session.get(AgendaItem, item.id) is not None


def test_moving_and_removing_keep_positions_unique(make):
    meeting = make.meeting()
    a, b, c, d = (make.item(meeting=meeting) for _ in range(4))
    assert services.move_item(d, "up", actor=None)
    db.session.commit()
    assert services.move_item(a, "down", actor=None)
    db.session.commit()
    services.remove_item(b, actor=None)
    db.session.commit()
    db.session.expire_all()
    assert [(i.id, i.position) for i in meeting.items] == [(a.id, 1), (d.id, 2), (c.id, 3)]
