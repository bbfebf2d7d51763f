"""Deliver tasks carry a chunk of rows: shared loads, one claim and one outcome per row."""
from __future__ import annotations

import email
import re
import smtplib
import uuid
from datetime import timedelta
from email import policy
from pathlib import Path

from sqlalchemy import select

from mdt import clock
from mdt.delivery import dispatcher
from mdt.delivery import services as delivery
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus
from worker import tasks

S = NotificationStatus


def reminders(make, count: int) -> list[int]:
    """Due 24 h reminders for ``count`` attendees of one meeting with a two-case agenda."""
    meeting = make.meeting(starts_at=(clock.now() + timedelta(days=3)).replace(microsecond=0))
    make.item(meeting=meeting)
    make.item(meeting=meeting)
    rows = []
    for i in range(count):
        person = make.specialist(email=f"batch{i}.{uuid.uuid4().hex[:6]}@example.org")
        make.attendance(meeting, person, present=False)
        rows.append(Notification(
            kind=NotificationKind.MEETING_REMINDER, recipient=person, meeting_id=meeting.id,
            due_at=clock.now() - timedelta(minutes=1), payload={"offset_minutes": 1440},
            dedup_key=f"batch:m{meeting.id}:u{person.id}"))
    db.session.add_all(rows)
    db.session.commit()
    return [r.id for r in rows]


def statuses(ids) -> list[S]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification.status).where(Notification.id.in_(ids))
                                   .order_by(Notification.id)))


SHARED = re.compile(r"\bFROM (meetings|agenda_items|attendances)\b")


def test_rows_of_a_batch_share_the_meeting_attendees_and_agenda(make, count_queries, app):
    small, large = reminders(make, 2), reminders(make, 6)
    with count_queries() as two:
        delivery.deliver_batch(small)
    with count_queries() as six:
        delivery.deliver_batch(large)
    assert statuses(small + large) == [S.SENT] * 8
    shared = [sum(bool(SHARED.search(s)) for s in q.statements) for q in (two, six)]
    assert shared[0] == shared[1] > 0  # loaded once per batch, whatever its size
    # Per row: the claim, the row with its recipient, the outcome.
    assert len(six) - len(two) == 4 * 3
    sent = sorted(Path(app.config["MAIL_SINK_DIR"]).glob("*.eml"))
    assert len(sent) == 8
    for path in sent:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Subject"].startswith("Reminder: ")
        assert "Agenda (2 cases)" in message.get_body(("plain",)).get_content()


def test_a_batch_run_twice_sends_each_row_once(make, app):
    ids = reminders(make, 3)
    first = delivery.deliver_batch(ids)
    again = delivery.deliver_batch(ids + ids[:1])
    assert [r.outcome for r in first.values()] == [delivery.Outcome.SENT] * 3
    assert [r.outcome for r in again.values()] == [delivery.Outcome.SKIPPED] * 3


class FailOn:
    """A backend that refuses (421) the rows named, once each, and accepts the rest."""

    def __init__(self, *keys: int) -> None:
        self.failing = {str(k) for k in keys}
        self.sent: list[str] = []

    def send(self, message, *, key):
        if key in self.failing:
            self.failing.discard(key)
            raise smtplib.SMTPResponseException(421, b"try later")
        self.sent.append(key)


def test_a_transient_error_puts_back_only_that_row_and_the_dispatcher_publishes_it_alone(
        make, app, celery_app, monkeypatch, frozen_clock):
    now = frozen_clock(clock.now().replace(microsecond=0))
    ids = reminders(make, 3)
    backend = FailOn(ids[1])
    monkeypatch.setattr(delivery, "get_backend", lambda config: backend)
    assert tasks.deliver.run(ids) == "retry=1 sent=2"
    assert statuses(ids) == [S.SENT, S.PENDING, S.SENT]
    assert backend.sent == [str(ids[0]), str(ids[2])]
    chunks: list[list[int]] = []
    frozen_clock(now + timedelta(seconds=app.config["NOTIFY_RETRY_DELAY"]))
    assert dispatcher.dispatch(chunks.append).published == 1
    # The failed row goes alone; the rows sent are not sent again.
    assert chunks == [[ids[1]]]
    assert tasks.deliver.run(chunks[0]) == "sent"
    assert tasks.deliver.run(ids) == "skipped"
    assert backend.sent == [str(ids[0]), str(ids[2]), str(ids[1])]
    assert statuses(ids) == [S.SENT] * 3


def test_the_dispatcher_publishes_chunks_of_the_configured_size(make, app, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 2)
    ids = reminders(make, 5)
    chunks: list[list[int]] = []
    assert dispatcher.dispatch(chunks.append).published == 5
    assert chunks == [ids[0:2], ids[2:4], ids[4:5]]


def test_a_batch_holds_its_waiting_rows_for_the_claim_lease_not_ten_minutes(make, monkeypatch,
                                                                            frozen_clock):
    now = frozen_clock(clock.now().replace(microsecond=0))
    ids = reminders(make, 3)
    assert dispatcher.dispatch(lambda chunk: None).published == 3  # queued: 10 minutes
    seen: dict[int, tuple] = {}

    class Peek:
        """Reads the rows from another connection while the first one is on the wire."""

        def send(self, outgoing, *, key):
            if seen:
                return
            with db.engine.connect() as other:
                seen.update({row.id: (row.status, row.lease_expires_at) for row in other.execute(
                    select(Notification.id, Notification.status, Notification.lease_expires_at)
                    .where(Notification.id.in_(ids)))})

    monkeypatch.setattr(delivery, "get_backend", lambda config: Peek())
    delivery.deliver_batch(ids)
    lease = now + delivery.claim_lease()
    # The row being sent is claimed; the two after it are held by this worker, committed.
    assert {i: seen[i][0] for i in ids} == {ids[0]: S.SENDING, ids[1]: S.PENDING,
                                            ids[2]: S.PENDING}
    assert {seen[i][1] for i in ids} == {lease}
    assert statuses(ids) == [S.SENT] * 3
