"""Delivery in-process: claim, send, retry, fail, dispatch, lease, status, resend."""
from __future__ import annotations

import itertools
import smtplib
from datetime import timedelta
from email.message import EmailMessage

import pytest
from flask import current_app
from sqlalchemy import select

from mdt import clock
from mdt.audit.models import AuditEntry
from mdt.delivery import dispatcher, mail, operations, retry
from mdt.delivery import services as delivery
from mdt.delivery.models import DispatcherRun
from mdt.delivery.services import Outcome
from mdt.errors import ConflictError, NotFoundError
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .factories import utc

NOW = utc(2026, 12, 3, 9, 0)
S = NotificationStatus
_NUMBERS = itertools.count(1)  # one sequence for the whole session: dedup keys stay unique


def make_notification(user, *, due_at=None, status=S.PENDING, send_email=True, **kw):
    row = Notification(kind=NotificationKind.CONSENSUS_SIGNED, recipient=user,
                       due_at=due_at or NOW - timedelta(minutes=1), status=status,
                       dedup_key=f"test:{next(_NUMBERS)}", send_email=send_email, **kw)
    db.session.add(row)
    db.session.commit()
    return row


def fresh(notification_id: int) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, notification_id)


class FakeBackend:
    """Records messages; ``errors`` are raised, one per send, before accepting."""

    def __init__(self, errors=()):
        self.sent: list[tuple[str, EmailMessage]] = []
        self.errors = list(errors)

    def send(self, outgoing, *, key):
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((key, outgoing.message))


@pytest.fixture
def backend(monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(delivery, "get_backend", lambda config: fake)
    return fake


@pytest.fixture
def rendered(monkeypatch):
    """Replace build_message: a simple message per notification (None for ids in ``.stale``)."""

    class Renderer:
        stale: set[int] = set()

        def __call__(self, notification):
            if notification.id in self.stale:
                return None
            msg = EmailMessage()
            msg["Subject"] = f"Consensus signed #{notification.id}"
            msg["From"] = current_app.config["MAIL_SENDER"]  # as render.compose.compose does
            msg["To"] = notification.recipient.email
            msg.set_content("The consensus is signed.")
            return msg

    renderer = Renderer()
    import mdt.notifications.render as render

    monkeypatch.setattr(render, "build_message", renderer)
    return renderer


@pytest.fixture(autouse=True)
def _now(frozen_clock):
    frozen_clock(NOW)


def test_deliver_claims_sends_and_marks_sent_once(make, backend, rendered, app):
    row = make_notification(make.clinician(email="ref@example.org"))
    assert delivery.deliver(row.id).outcome == Outcome.SENT
    assert delivery.deliver(row.id).outcome == Outcome.SKIPPED  # a second delivery of the task
    assert len(backend.sent) == 1
    key, message = backend.sent[0]
    assert key == str(row.id)
    assert message["From"] == app.config["MAIL_SENDER"]
    assert message["To"] == "ref@example.org"
    assert message["X-MDT-Notification"] == str(row.id)
    row = fresh(row.id)
    assert (row.status, row.attempts, row.sent_at, row.claimed_at) == (S.SENT, 1, NOW, None)


def test_claim_is_won_once_and_only_when_due_and_pending(make):
    user = make.clinician()
    due = make_notification(user)
    later = make_notification(user, due_at=NOW + timedelta(hours=1))
    cancelled = make_notification(user, status=S.CANCELLED)
    assert delivery.claim(due.id) is True
    assert delivery.claim(due.id) is False
    assert delivery.claim(later.id) is False
    assert delivery.claim(cancelled.id) is False
    assert delivery.claim(999_999) is False
    row = fresh(due.id)
    assert (row.status, row.attempts, row.claimed_at) == (S.SENDING, 1, NOW)


def test_no_longer_relevant_is_cancelled_without_mail(make, backend, rendered):
    row = make_notification(make.clinician())
    rendered.stale.add(row.id)
    assert delivery.deliver(row.id).outcome == Outcome.CANCELLED
    assert backend.sent == []
    assert fresh(row.id).status == S.CANCELLED


def test_email_switched_off_is_in_app_only(make, backend, rendered):
    row = make_notification(make.clinician(), send_email=False)
    assert delivery.deliver(row.id).outcome == Outcome.IN_APP
    assert backend.sent == []
    row = fresh(row.id)
    assert (row.status, row.sent_at) == (S.SENT, NOW)


def test_deactivated_recipient_is_cancelled(make, backend, rendered):
    row = make_notification(make.clinician(is_active=False))
    assert delivery.deliver(row.id).outcome == Outcome.CANCELLED
    assert backend.sent == []
    row = fresh(row.id)
    assert (row.status, row.last_error) == (S.CANCELLED, "recipient deactivated")


def test_transient_errors_wait_in_the_database_with_backoff_then_send(make, backend, rendered):
    backend.errors = [smtplib.SMTPResponseException(451, b"try later"),
                      ConnectionRefusedError("refused")]
    row = make_notification(make.clinician())
    first = delivery.deliver(row.id)
    assert (first.outcome, first.retry_at) == (Outcome.RETRY, NOW + timedelta(seconds=10))
    after_first = fresh(row.id)
    assert (after_first.status, after_first.next_attempt_at, after_first.failing_since,
            after_first.lease_expires_at) == (S.PENDING, NOW + timedelta(seconds=10), NOW, None)
    assert "451" in after_first.last_error
    # The dispatcher publishes it when its next attempt comes, not before.
    assert dispatcher.due_batch() == []
    clock.set_now(NOW + timedelta(seconds=10))
    assert dispatcher.due_batch() == [row.id]
    second = delivery.deliver(row.id)
    assert second.retry_at == NOW + timedelta(seconds=10 + 20)
    assert fresh(row.id).failing_since == NOW  # the run of failures began at the first
    clock.set_now(NOW + timedelta(seconds=30))
    assert delivery.deliver(row.id).outcome == Outcome.SENT
    assert len(backend.sent) == 1
    sent = fresh(row.id)
    assert (sent.attempts, sent.failing_since, sent.last_error) == (3, None, None)


def test_while_rows_wait_each_dispatcher_run_tries_the_one_waiting_longest(make, backend,
                                                                          rendered):
    user = make.clinician()
    rows = [make_notification(user) for _ in range(3)]
    backend.errors = [OSError("down")] * 20
    for row in rows:
        assert delivery.deliver(row.id).outcome == Outcome.RETRY
    published: list[int] = []
    clock.set_now(NOW + timedelta(seconds=5))  # every retry 5 s away: one probe
    result = dispatcher.dispatch(published.extend)
    assert (result.probed, published) == (rows[0].id, [rows[0].id])
    # On its way (queued): no second probe until it is back.
    assert dispatcher.dispatch(published.extend).probed is None
    assert delivery.deliver(rows[0].id).outcome == Outcome.RETRY  # still down
    clock.set_now(NOW + timedelta(seconds=6))
    assert dispatcher.dispatch(published.extend).probed == rows[1].id
    assert delivery.deliver(rows[1].id).outcome == Outcome.RETRY
    clock.set_now(NOW + timedelta(seconds=10))  # due anyway: no probe, just the due row
    result = dispatcher.dispatch(published.extend)
    assert (result.probed, published[-1:]) == (None, [rows[2].id])


def test_retry_delays_double_and_stay_capped(app):
    delays = [retry.retry_delay(n) for n in range(1, 12)]
    assert delays[:5] == [10.0, 20.0, 40.0, 80.0, 160.0]
    assert max(delays) == app.config["NOTIFY_RETRY_MAX_DELAY"] == 300.0
    assert retry.retry_delay(10_000) == 300.0  # no overflow after days of attempts


def test_a_row_is_retried_until_the_horizon_then_failed(make, backend, rendered, app):
    assert app.config["NOTIFY_RETRY_HORIZON"] == 24 * 3600
    backend.errors = [OSError("connection refused")] * 400
    row = make_notification(make.clinician())
    attempts_at = []
    while (result := delivery.deliver(row.id)).outcome == Outcome.RETRY:
        attempts_at.append(clock.now())
        clock.set_now(result.retry_at)
    assert result.outcome == Outcome.FAILED
    failed = fresh(row.id)
    # Backing off to every 5 minutes for a day (the old budget was 6 attempts in 5 min 14 s).
    assert attempts_at[-1] - NOW < timedelta(hours=24) <= clock.now() - NOW
    assert failed.status == S.FAILED and 280 < failed.attempts < 300
    assert failed.last_error.startswith(
        f"gave up after {failed.attempts} attempts over 24 h: OSError: connection refused")


def test_a_reminder_that_stops_mattering_while_retried_is_cancelled_not_failed(
        make, backend, monkeypatch):
    meeting = make.meeting(starts_at=NOW + timedelta(minutes=30))
    person = make.specialist()
    make.attendance(meeting, person, present=False)
    row = Notification(kind=NotificationKind.MEETING_REMINDER, recipient=person,
                       meeting_id=meeting.id, due_at=NOW, dedup_key="retry:reminder",
                       payload={"offset_minutes": 30})
    db.session.add(row)
    db.session.commit()
    backend.errors = [OSError("connection refused")] * 100
    while (result := delivery.deliver(row.id)).outcome == Outcome.RETRY:
        clock.set_now(result.retry_at)
    assert result.outcome == Outcome.CANCELLED
    assert clock.now() >= meeting.starts_at
    assert (fresh(row.id).status, fresh(row.id).last_error) == (S.CANCELLED,
                                                                "no longer relevant when due")


def test_a_retry_that_gets_through_brings_the_other_waiting_rows_forward(make, backend,
                                                                         rendered):
    user = make.clinician()
    rows = [make_notification(user) for _ in range(3)]
    backend.errors = [OSError("down")] * 3
    for row in rows:
        assert delivery.deliver(row.id).outcome == Outcome.RETRY
    backend.errors = [OSError("down")] * 2  # the first two fail again: 20 s to wait
    for row in rows[:2]:
        clock.set_now(NOW + timedelta(seconds=10))
        assert delivery.deliver(row.id).outcome == Outcome.RETRY
    assert {fresh(r.id).next_attempt_at for r in rows[:2]} == {NOW + timedelta(seconds=30)}
    # A row sent at its first attempt says nothing about the others' failures.
    fresh_row = make_notification(user)
    assert delivery.deliver_batch([fresh_row.id])[fresh_row.id].recovered is False
    assert {fresh(r.id).next_attempt_at for r in rows[:2]} == {NOW + timedelta(seconds=30)}
    result = delivery.deliver_batch([rows[2].id])[rows[2].id]  # the server is back
    assert (result.outcome, result.recovered) == (Outcome.SENT, True)
    assert {fresh(r.id).next_attempt_at for r in rows[:2]} == {NOW + timedelta(seconds=10)}
    assert sorted(dispatcher.due_batch()) == sorted(r.id for r in rows[:2])


def test_permanent_error_fails_at_once(make, backend, rendered):
    backend.errors = [mail.PermanentMailError("550 no such user")]
    row = make_notification(make.clinician())
    assert delivery.deliver(row.id).outcome == Outcome.FAILED
    row = fresh(row.id)
    assert (row.status, row.attempts, row.last_error) == (S.FAILED, 1, "550 no such user")


def test_rendering_bug_fails_the_row(make, backend, monkeypatch):
    import mdt.notifications.render as render

    monkeypatch.setattr(render, "build_message", lambda n: 1 / 0)
    row = make_notification(make.clinician())
    assert delivery.deliver(row.id).outcome == Outcome.FAILED
    assert "ZeroDivisionError" in fresh(row.id).last_error


def test_dispatch_publishes_due_rows_once_in_due_order(make):
    user = make.clinician()
    late = make_notification(user, due_at=NOW - timedelta(minutes=1))
    early = make_notification(user, due_at=NOW - timedelta(hours=2))
    make_notification(user, due_at=NOW + timedelta(minutes=1))  # not yet due
    make_notification(user, status=S.SENT)
    published: list[int] = []
    result = dispatcher.dispatch(published.extend)
    assert (result.ran, result.published, result.unpublished) == (True, 2, 0)
    assert published == [early.id, late.id]
    # Published and not yet claimed: not published again within the lease...
    assert dispatcher.dispatch(published.extend).published == 0
    # ...but again after it (the message was lost), and the claim keeps it single.
    clock.set_now(NOW + delivery.DISPATCH_LEASE + timedelta(seconds=1))
    assert dispatcher.dispatch(published.extend).published == 3
    assert db.session.scalar(select(DispatcherRun).order_by(DispatcherRun.id.desc())
                             .limit(1)).published == 3


def test_dispatch_in_batches(make, monkeypatch):
    monkeypatch.setattr(dispatcher, "BATCH_SIZE", 2)
    user = make.clinician()
    rows = [make_notification(user) for _ in range(5)]
    published: list[int] = []
    assert dispatcher.dispatch(published.extend).published == 5
    assert sorted(published) == [r.id for r in rows]


def test_broker_down_leaves_rows_pending_for_the_next_run(make, app, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 1)  # one row per task
    user = make.clinician()
    rows = [make_notification(user) for _ in range(3)]
    published: list[int] = []

    def flaky(notification_ids):
        if len(published) == 1:
            raise ConnectionRefusedError("broker down")
        published.extend(notification_ids)

    result = dispatcher.dispatch(flaky)
    assert (result.published, result.unpublished) == (1, 2)
    assert "broker down" in result.error
    assert all(fresh(r.id).status == S.PENDING for r in rows)
    # The next run publishes the two that were left, not the first again.
    retry: list[int] = []
    assert dispatcher.dispatch(retry.extend).published == 2
    assert retry == [rows[1].id, rows[2].id]


def test_dispatch_releases_claims_of_a_dead_worker(make):
    row = make_notification(make.clinician())
    assert delivery.claim(row.id)
    published: list[int] = []
    assert dispatcher.dispatch(published.extend).released == 0  # a live claim is left alone
    # The lease is sized to the mail timeout (10 s): a minute, not ten.
    assert delivery.claim_lease() == timedelta(seconds=60)
    assert fresh(row.id).lease_expires_at == NOW + timedelta(seconds=60)
    clock.set_now(NOW + timedelta(seconds=59))
    assert dispatcher.dispatch(published.extend).released == 0
    clock.set_now(NOW + timedelta(seconds=61))
    result = dispatcher.dispatch(published.extend)
    assert (result.released, published) == (1, [row.id])
    released = fresh(row.id)
    assert released.status == S.PENDING and "may arrive twice" in released.last_error


def test_only_one_dispatcher_holds_the_lease(make):
    row = make_notification(make.clinician())
    assert dispatcher.acquire_lease(dispatcher.DISPATCHER_LEASE_NAME, "other", timedelta(minutes=5))
    published: list[int] = []
    assert dispatcher.dispatch(published.extend).ran is False
    assert published == []
    # The holder may extend; a dead holder's lease expires.
    assert dispatcher.acquire_lease(dispatcher.DISPATCHER_LEASE_NAME, "other", timedelta(minutes=5))
    clock.set_now(NOW + timedelta(minutes=5, seconds=1))
    assert dispatcher.dispatch(published.extend).published == 1
    assert published == [row.id]
    # A finished run gives the lease back at once.
    assert dispatcher.acquire_lease(dispatcher.DISPATCHER_LEASE_NAME, "third", timedelta(minutes=5))


def test_status_counts_oldest_and_stale_dispatcher(make):
    user = make.clinician()
    make_notification(user, due_at=NOW - timedelta(hours=3))
    make_notification(user)
    make_notification(user, status=S.FAILED)
    status = operations.delivery_status()
    assert status.counts == {"pending": 2, "sending": 0, "sent": 0, "failed": 1, "cancelled": 0}
    assert status.oldest_pending_due_at == NOW - timedelta(hours=3)
    assert status.last_run is None and status.dispatcher_stale
    dispatcher.dispatch(lambda _id: None)
    assert not operations.delivery_status().dispatcher_stale
    clock.set_now(NOW + timedelta(minutes=5, seconds=1))
    assert operations.delivery_status().dispatcher_stale


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED, S.SENT])
def test_resend_puts_the_row_back_and_audits(make, status):
    row = make_notification(make.clinician(), status=status, attempts=6, last_error="550",
                            sent_at=NOW if status == S.SENT else None)
    coordinator = make.coordinator()
    operations.resend(row.id, actor=coordinator)
    db.session.commit()
    row = fresh(row.id)
    assert (row.status, row.attempts, row.last_error, row.sent_at) == (S.PENDING, 0, None, None)
    entry = db.session.scalars(select(AuditEntry)
                               .where(AuditEntry.action == "notification.resend")).one()
    assert (entry.actor_id, entry.object_id, entry.data) == (
        coordinator.id, row.id, {"status": [status.value, "pending"]})


def test_resend_refuses_pending_and_unknown(make):
    row = make_notification(make.clinician())
    with pytest.raises(ConflictError):
        operations.resend(row.id, actor=None)
    with pytest.raises(NotFoundError):
        operations.resend(999_999, actor=None)
