"""The real worker path: a ``celery worker`` process, a real broker, a real SMTP server.

The test process writes notification rows (due in the past: time is set,
not slept through) and runs the dispatcher in-process, publishing to the
same broker; the worker process claims, renders and sends to an aiosmtpd
server in this process. Assertions count what the SMTP server received.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import func, select

from mdt import clock
from mdt.delivery import dispatcher
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .conftest import need_server
from .helpers.processes import (
    RedisServer,
    Worker,
    redis_reachable,
    wait_for,
    worker_env,
)
from .helpers.smtp import SMTPServer, free_port

pytestmark = pytest.mark.worker
S = NotificationStatus
#: A private Redis database number on the shared server for these tests.
REDIS_DB = 13


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def queue() -> str:
    """A queue of this test's own, so parallel runs never take each other's tasks."""
    return f"mdt-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker_config(app, monkeypatch):
    """Point this process's publisher at ``url``/``queue`` (the worker gets the same)."""

    def use(url: str, queue: str) -> None:
        monkeypatch.setitem(app.config, "BROKER_URL", url)
        monkeypatch.setitem(app.config, "BROKER_QUEUE", queue)
        app.extensions.pop("mdt_publisher", None)

    yield use
    publisher = app.extensions.pop("mdt_publisher", None)
    if publisher is not None:
        publisher.close()


@pytest.fixture
def worker_clock(tmp_path):
    """The time of this test and of its workers: a clock file (MDT_CLOCK_FILE) the test moves."""

    class WorkerClock:
        path = tmp_path / "clock"

        def set(self, moment):
            clock.write_file(self.path, moment)  # the workers' time, running on from moment
            clock.set_now(moment)  # this process's, frozen there
            return moment

        def restart(self):
            """Start counting again from the real time now (a worker may be slow to start)."""
            self.start = self.set(datetime.now(UTC).replace(microsecond=0))

    worker_time = WorkerClock()
    worker_time.start = worker_time.set(clock.now().replace(microsecond=0))
    return worker_time


@pytest.fixture
def start_worker(app, database_url, smtp, tmp_path):
    workers: list[Worker] = []

    def start(broker_url: str, queue: str, *, app: str = "worker", **extra) -> Worker:
        if (tmp_path / "clock").exists():  # the test uses worker_clock
            extra.setdefault("MDT_CLOCK_FILE", str(tmp_path / "clock"))
        env = worker_env(database_url=database_url, broker_url=broker_url, instance=tmp_path,
                         smtp_port=smtp.port, queue=queue, **extra)
        worker = Worker(env, tmp_path / f"worker{len(workers)}.log", app=app)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


def meeting_with_attendees(make, count: int):
    """A meeting in three days with ``count`` attendees; their 24 h reminders are due."""
    meeting = make.meeting(starts_at=(clock.now() + timedelta(days=3)).replace(microsecond=0))
    people = [make.specialist(email=f"attendee{i}.{uuid.uuid4().hex[:6]}@example.org")
              for i in range(count)]
    rows = []
    for person in people:
        make.attendance(meeting, person, present=False)
        rows.append(Notification(
            kind=NotificationKind.MEETING_REMINDER, recipient=person, meeting_id=meeting.id,
            due_at=clock.now() - timedelta(minutes=1), payload={"offset_minutes": 1440},
            dedup_key=f"meeting_reminder:m{meeting.id}:u{person.id}:1440"))
    db.session.add_all(rows)
    db.session.commit()
    return meeting, people, [r.id for r in rows]


def statuses(ids) -> Counter:
    db.session.rollback()  # a fresh transaction sees what the worker committed
    return Counter(db.session.scalars(select(Notification.status).where(Notification.id.in_(ids))))


def wait_until_sent(ids, worker: Worker, timeout: float = 30) -> None:
    try:
        wait_for(lambda: statuses(ids)[S.SENT] == len(ids), timeout, "every notification sent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {dict(statuses(ids))}\nworker log:\n{worker.log()}") from None


def assert_each_arrived_once(smtp, ids, people, meeting) -> None:
    counts = smtp.sink.per_notification()
    assert counts == Counter({i: 1 for i in ids}), f"lost or doubled: {counts}"
    recipients = sorted(m["X-Envelope-To"] for m in smtp.sink.snapshot())
    assert recipients == sorted(p.email for p in people)
    local = meeting.starts_at.astimezone(ZoneInfo("Asia/Shanghai"))
    expected = f"Reminder: Bone metastasis MDT, {local:%a %d %b %Y, %H:%M} CST (Asia/Shanghai)"
    subjects = {" ".join(str(m["Subject"]).split()) for m in smtp.sink.snapshot()}
    assert subjects == {expected}


def test_reminders_reach_smtp_through_a_worker_on_the_embedded_broker(
        make, smtp, queue, tmp_path, broker_config, start_worker):
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    broker_config(broker_url, queue)
    meeting, people, ids = meeting_with_attendees(make, 3)
    worker = start_worker(broker_url, queue)
    assert dispatcher.dispatch().published == 3
    wait_until_sent(ids, worker)
    assert_each_arrived_once(smtp, ids, people, meeting)
    # A second dispatcher pass finds nothing more to do.
    assert dispatcher.dispatch().published == 0
    assert len(smtp.sink.snapshot()) == 3


@pytest.fixture
def shared_redis() -> str:
    """The shared Redis at 127.0.0.1:6379, on a database number of these tests' own."""
    if not redis_reachable():
        need_server("Redis", "127.0.0.1:6379")
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, which the test may stop and start."""
    if not RedisServer.available():
        need_server("redis-server", "not on PATH")
    server = RedisServer(free_port(), tmp_path)
    yield server
    server.stop()


def test_reminders_reach_smtp_through_a_worker_on_redis(
        make, smtp, queue, shared_redis, broker_config, start_worker):
    broker_config(shared_redis, queue)
    meeting, people, ids = meeting_with_attendees(make, 4)
    worker = start_worker(shared_redis, queue)
    assert dispatcher.dispatch().published == 4
    wait_until_sent(ids, worker)
    assert_each_arrived_once(smtp, ids, people, meeting)


def dispatch_each_minute_until_sent(ids, worker, worker_clock, *, minutes: int = 3) -> int:
    """Play beat after a kill: one dispatcher run per minute of the clock; return the minute
    at which every row had gone out (the worker sends what is published within seconds)."""
    for minute in range(1, minutes + 1):
        worker_clock.set(worker_clock.start + timedelta(minutes=minute))
        expected = statuses(ids)[S.SENT] + dispatcher.dispatch().published
        if expected > statuses(ids)[S.SENT]:
            try:
                wait_for(lambda n=expected: statuses(ids)[S.SENT] == n, 20,
                         "the published rows to be sent")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {dict(statuses(ids))}\n{worker.log()}") from None
        if statuses(ids)[S.SENT] == len(ids):
            return minute
    db.session.rollback()
    rows = [(r.id, r.status.value, r.claimed_at, r.lease_expires_at, r.last_error)
            for r in db.session.scalars(select(Notification).where(Notification.id.in_(ids)))]
    raise AssertionError(f"not every row went out within {minutes} minutes of the kill "
                         f"(clock started {worker_clock.start}): {rows}\n{worker.log()}")


def test_worker_killed_mid_send_loses_nothing_and_the_rest_goes_once_its_lease_passes(
        make, smtp, queue, shared_redis, broker_config, start_worker, app, monkeypatch,
        worker_clock):
    broker_config(shared_redis, queue)
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 3)  # two tasks of three rows
    meeting, people, ids = meeting_with_attendees(make, 6)
    smtp.sink.hold_at = 2  # the third message keeps the worker waiting for our reply
    first = start_worker(shared_redis, queue)
    worker_clock.restart()  # the minutes count from the dispatch
    assert dispatcher.dispatch().published == 6
    wait_for(smtp.sink.holding.is_set, 20, "the worker to be in the middle of a send")
    first.kill()
    smtp.sink.release.set()  # the held message is refused, never accepted
    assert statuses(ids) == Counter({S.SENT: 2, S.SENDING: 1, S.PENDING: 3})
    second = start_worker(shared_redis, queue)
    # The task still queued goes to the new worker; the killed one's row stays
    # claimed until its lease passes (time is moved on, not waited for).
    wait_for(lambda: statuses(ids)[S.SENT] == 5, 20, "the queued notifications")
    assert dispatch_each_minute_until_sent(ids, second, worker_clock) <= 2
    assert_each_arrived_once(smtp, ids, people, meeting)


def test_worker_killed_after_smtp_accepted_a_message_sends_nothing_twice(
        make, smtp, queue, shared_redis, broker_config, start_worker, app, monkeypatch,
        worker_clock):
    """Item 13: the kill comes after the server accepted the 2nd message and the worker
    heard so, before it touches the 3rd. Each outcome is committed the moment SMTP
    accepts, so nothing is sent again; the rest of the batch goes within minutes."""
    broker_config(shared_redis, queue)
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 5)  # one task of five rows
    meeting, people, ids = meeting_with_attendees(make, 5)
    first = start_worker(shared_redis, queue, app="tests.helpers.faults",
                         MDT_TEST_KILL_AT_CLAIM="3")
    worker_clock.restart()  # the minutes count from the dispatch
    assert dispatcher.dispatch().published == 5
    first.wait_dead(20)
    assert smtp.sink.per_notification() == Counter({ids[0]: 1, ids[1]: 1})
    assert statuses(ids) == Counter({S.SENT: 2, S.PENDING: 3}), first.log()
    second = start_worker(shared_redis, queue)
    # Held for the claim lease (60 s), not the 10-minute dispatch lease.
    assert dispatch_each_minute_until_sent(ids, second, worker_clock) <= 2
    assert_each_arrived_once(smtp, ids, people, meeting)


def test_worker_killed_between_acceptance_and_commit_sends_that_one_message_twice(
        make, smtp, queue, shared_redis, broker_config, start_worker, app, monkeypatch,
        worker_clock):
    """The one window left: accepted by the server, killed before the commit. That row alone
    goes again when its claim lease passes (docs/operations.md says so)."""
    broker_config(shared_redis, queue)
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 5)
    meeting, people, ids = meeting_with_attendees(make, 5)
    first = start_worker(shared_redis, queue, app="tests.helpers.faults",
                         MDT_TEST_KILL_AFTER_SEND="2")
    worker_clock.restart()  # the minutes count from the dispatch
    assert dispatcher.dispatch().published == 5
    first.wait_dead(20)
    assert statuses(ids) == Counter({S.SENT: 1, S.SENDING: 1, S.PENDING: 3}), first.log()
    second = start_worker(shared_redis, queue)
    assert dispatch_each_minute_until_sent(ids, second, worker_clock) <= 2
    assert smtp.sink.per_notification() == Counter({i: 1 for i in ids} | {ids[1]: 2})
    db.session.rollback()
    assert db.session.get(Notification, ids[1]).last_error is None  # sent the second time


def test_redis_down_while_changes_commit_then_everything_goes_once_it_is_back(
        make, smtp, queue, private_redis, broker_config, start_worker, client, login_as):
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    private_redis.start()
    broker_config(url, queue)
    worker = start_worker(url, queue)
    meeting = make.meeting(starts_at=(clock.now() + timedelta(days=3)).replace(microsecond=0))
    people = [make.specialist(email=f"invitee{i}@example.org") for i in range(3)]
    private_redis.stop()

    login_as(make.coordinator())
    for person in people:
        started = time.monotonic()
        response = client.post(f"/meetings/{meeting.id}/attendees", data={"user_id": person.id})
        # The page never talks to the broker: it answers at database speed
        # (a connection attempt to the stopped Redis alone would take seconds).
        assert time.monotonic() - started < 2.0
        assert response.status_code == 302
    db.session.rollback()
    ids = list(db.session.scalars(select(Notification.id).where(
        Notification.kind == NotificationKind.INVITATION, Notification.meeting_id == meeting.id)))
    assert len(ids) == 3

    started = time.monotonic()
    down = dispatcher.dispatch()
    assert (down.published, down.unpublished) == (0, 3)
    assert time.monotonic() - started < 15  # bounded, not hung
    assert statuses(ids) == Counter({S.PENDING: 3})

    private_redis.start()
    up = dispatcher.dispatch()
    assert (up.published, up.unpublished) == (3, 0)
    wait_until_sent(ids, worker, timeout=40)
    counts = smtp.sink.per_notification()
    assert counts == Counter({i: 1 for i in ids})
    assert sorted(m["X-Envelope-To"] for m in smtp.sink.snapshot()) == sorted(
        p.email for p in people)
    assert all(" ".join(str(m["Subject"]).split()).startswith("Invitation: Bone metastasis MDT")
               for m in smtp.sink.snapshot())


def test_smtp_answering_4xx_for_a_while_is_retried_and_delivered(
        make, smtp, queue, tmp_path, broker_config, start_worker, worker_clock):
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    broker_config(broker_url, queue)
    meeting, people, ids = meeting_with_attendees(make, 2)
    busy = iter(range(3))  # the first three attempts are refused
    smtp.sink.reply = lambda msg: "451 4.3.2 system busy" if next(busy, None) is not None else None
    worker = start_worker(broker_url, queue)  # retries 0.2 s, 0.4 s… (worker_env)
    for tick in range(1, 8):  # the rows wait in the database; each run publishes the due
        dispatcher.dispatch()
        settle(ids, worker)
        if statuses(ids)[S.SENT] == 2:
            break
        worker_clock.set(worker_clock.start + timedelta(seconds=tick))
    wait_until_sent(ids, worker)
    assert smtp.sink.refused == 3
    assert_each_arrived_once(smtp, ids, people, meeting)
    db.session.rollback()
    attempts = db.session.scalar(select(func.sum(Notification.attempts))
                                 .where(Notification.id.in_(ids)))
    assert attempts == 2 + 3


def test_two_dispatchers_at_once_send_each_notification_once(
        make, smtp, queue, shared_redis, broker_config, start_worker, app, monkeypatch):
    broker_config(shared_redis, queue)
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 2)  # four slow publishes
    meeting, people, ids = meeting_with_attendees(make, 8)
    barrier = threading.Barrier(2)
    results = []

    def run_dispatcher() -> None:
        with app.app_context():
            barrier.wait()

            def slow_publish(notification_ids: list[int]) -> None:
                time.sleep(0.1)  # keep the two runs overlapping, even on a busy machine
                dispatcher.publish_deliver(notification_ids)

            results.append(dispatcher.dispatch(slow_publish))

    threads = [threading.Thread(target=run_dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.ran for r in results) == [False, True]  # the lease let one run
    assert sum(r.published for r in results) == 8
    # Even a dispatcher without the lease publishing everything again sends nothing twice.
    for notification_id in ids:
        dispatcher.publish_deliver([notification_id])
    worker = start_worker(shared_redis, queue)
    wait_until_sent(ids, worker)
    wait_for(lambda: queue_length(shared_redis, queue) == 0, 20, "the queue to drain")
    assert_each_arrived_once(smtp, ids, people, meeting)


def queue_length(url: str, queue: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return client.llen(queue)
    finally:
        client.close()


def test_a_row_that_cannot_be_built_fails_alone_and_the_worker_sends_the_rest(
        make, smtp, queue, tmp_path, broker_config, start_worker, app, monkeypatch):
    """Item 8 through a real worker: control characters written straight into the rows."""
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    broker_config(broker_url, queue)
    monkeypatch.setitem(app.config, "NOTIFY_DELIVER_BATCH", 10)  # one task for every row
    meeting, people, ids = meeting_with_attendees(make, 4)
    meeting.series.name = "Bone\r\nmetastasis MDT"
    people[1].name = "Dr Evil\r\nBcc: leak@attacker.example"
    people[2].email = "broken@example.org\r\nbcc: leak@attacker.example"
    db.session.commit()
    worker = start_worker(broker_url, queue)
    assert dispatcher.dispatch().published == 4
    try:
        wait_for(lambda: statuses(ids)[S.PENDING] + statuses(ids)[S.SENDING] == 0, 30,
                 "every row to be sent or failed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {dict(statuses(ids))}\n{worker.log()}") from None
    db.session.rollback()
    rows = {r.id: r for r in db.session.scalars(select(Notification).where(
        Notification.id.in_(ids)))}
    assert [rows[i].status for i in ids] == [S.SENT, S.SENT, S.FAILED, S.SENT]
    assert "could not be built" in rows[ids[2]].last_error
    assert smtp.sink.per_notification() == Counter({ids[0]: 1, ids[1]: 1, ids[3]: 1})
    envelopes = sorted(m["X-Envelope-To"] for m in smtp.sink.snapshot())
    assert envelopes == sorted(people[i].email for i in (0, 1, 3))  # nobody else, no leak
    subjects = {" ".join(str(m["Subject"]).split()) for m in smtp.sink.snapshot()}
    assert all(s.startswith("Reminder: Bone metastasis MDT, ") for s in subjects)


def settle(ids, worker, timeout: float = 20) -> None:
    """Wait until the worker has made the attempts published: no row queued, held or sending."""

    def busy() -> int:
        db.session.rollback()
        return db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.id.in_(ids), Notification.status.in_([S.PENDING, S.SENDING]),
            Notification.lease_expires_at.is_not(None))) or 0

    try:
        wait_for(lambda: busy() == 0, timeout, "the published attempts to be made")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {dict(statuses(ids))}\n{worker.log()}") from None


def test_an_smtp_outage_longer_than_the_old_retry_budget_loses_nothing(
        make, smtp, queue, tmp_path, broker_config, start_worker, worker_clock, client, login_as,
        record_property):
    """Item 14 through a real worker: the server refuses every message for 15 minutes of the
    clock (the old budget was 6 attempts in 5 min 14 s), with the production retry delays;
    the test plays beat, one dispatcher run per minute."""
    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    broker_config(broker_url, queue)
    start = worker_clock.start
    meeting, people, early = meeting_with_attendees(make, 3)  # due now
    soon = make.meeting(starts_at=start + timedelta(minutes=10))
    late_people = [make.specialist() for _ in range(2)]
    later = []
    for person in late_people:
        make.attendance(meeting, person, present=False)
        later.append(Notification(
            kind=NotificationKind.MEETING_REMINDER, recipient=person, meeting_id=meeting.id,
            due_at=start + timedelta(minutes=2), payload={"offset_minutes": 1440},
            dedup_key=f"meeting_reminder:m{meeting.id}:u{person.id}:1440"))
    make.attendance(soon, people[0], present=False)
    stale = Notification(kind=NotificationKind.MEETING_REMINDER, recipient=people[0],
                         meeting_id=soon.id, due_at=start, payload={"offset_minutes": 60},
                         dedup_key=f"meeting_reminder:m{soon.id}:u{people[0].id}:60")
    db.session.add_all([*later, stale])
    db.session.commit()
    waiting = early + [r.id for r in later]
    ids = waiting + [stale.id]
    smtp.sink.reply = lambda message: "421 4.3.2 mail system unavailable"
    worker = start_worker(broker_url, queue, MDT_NOTIFY_RETRY_DELAY="10",
                          MDT_NOTIFY_RETRY_MAX_DELAY="300")
    login_as(make.coordinator())

    minute = 0
    for minute in range(16):  # 15 minutes of refusals
        worker_clock.set(start + timedelta(minutes=minute))
        dispatcher.dispatch()
        settle(ids, worker)
        if minute == 6:  # past the old budget: nothing failed, and the page says why
            assert statuses(ids) == Counter({S.PENDING: 6}), statuses(ids)
            html = client.get("/admin/notifications").get_data(as_text=True)
            assert "Delivery is failing:" in html and "421 4.3.2 mail system unavailable" in html, \
                html[html.find("<main"):][:3000]
    db.session.rollback()
    rows = {r.id: r for r in db.session.scalars(select(Notification).where(
        Notification.id.in_(ids)))}
    attempts = sorted(rows[i].attempts for i in waiting)
    assert statuses(waiting) == Counter({S.PENDING: 5}) and attempts[0] >= 6
    assert all(rows[i].failing_since is not None for i in waiting)
    # The reminder of the meeting that started meanwhile stopped mattering: cancelled.
    assert (rows[stale.id].status, rows[stale.id].last_error) == (
        S.CANCELLED, "no longer relevant when due")
    assert smtp.sink.per_notification() == Counter()

    smtp.sink.reply = None  # the server answers again
    next_attempts = {i: rows[i].next_attempt_at for i in waiting}
    back_at = minute
    while statuses(waiting)[S.SENT] < len(waiting):
        minute += 1
        assert minute <= back_at + 7, f"not all delivered: {dict(statuses(ids))}"
        worker_clock.set(start + timedelta(minutes=minute))
        dispatcher.dispatch()
        settle(ids, worker)
    db.session.rollback()
    sent_at = {i: db.session.get(Notification, i).sent_at for i in waiting}
    assert smtp.sink.per_notification() == Counter({i: 1 for i in waiting})
    # Once one retry got through, the others went at the next run, not at their own time.
    first_sent = min(sent_at.values())
    assert max(sent_at.values()) - first_sent < timedelta(minutes=1, seconds=30)
    assert any(sent_at[i] < next_attempts[i] for i in waiting)
    assert "Delivery is failing" not in client.get("/admin/notifications").get_data(as_text=True)
    record_property("outage_minutes", 15)
    record_property("attempts_per_row_during_outage", attempts)
    record_property("minutes_to_deliver_all_after_recovery",
                    (max(sent_at.values()) - (start + timedelta(minutes=back_at))) /
                    timedelta(minutes=1))


def test_place_change_newcomer_and_cancel_through_a_worker(
        make, smtp, queue, tmp_path, broker_config, start_worker):
    """Items 15-17 end to end: who gets an update, an invitation, a cancellation."""
    from mdt.meetings import services as meetings

    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    broker_config(broker_url, queue)
    worker = start_worker(broker_url, queue)
    meeting = make.meeting(starts_at=(clock.now() + timedelta(days=3)).replace(microsecond=0))
    first, newcomer, late = (make.specialist(email=f"{n}.{uuid.uuid4().hex[:6]}@example.org")
                             for n in ("first", "newcomer", "late"))

    def deliver_invitations() -> None:
        db.session.commit()
        ids = list(db.session.scalars(select(Notification.id).where(
            Notification.kind == NotificationKind.INVITATION,
            Notification.status == S.PENDING)))
        dispatcher.dispatch()
        wait_until_sent(ids, worker)

    meetings.invite(meeting, first, actor=None)
    deliver_invitations()
    meetings.update_meeting(meeting, expected_version=meeting.version,
                            starts_at=meeting.starts_at, duration_minutes=meeting.duration_minutes,
                            location="Room 9", video_url=None, chair_id=None, actor=None)
    meetings.invite(meeting, newcomer, actor=None)
    deliver_invitations()
    meetings.invite(meeting, late, actor=None)  # cancelled before this invitation went out
    meetings.cancel_meeting(meeting, reason="Bank holiday", expected_version=meeting.version,
                            actor=None)
    deliver_invitations()

    received: dict[str, list[tuple[str, str]]] = {}
    for message in smtp.sink.snapshot():
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        event = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
        verb = " ".join(str(message["Subject"]).split()).split(":")[0]
        received.setdefault(message["X-Envelope-To"], []).append((verb, str(event["LOCATION"])))
    assert received == {
        first.email: [("Invitation", "Room 3"), ("Updated", "Room 9"), ("Cancelled", "Room 9")],
        newcomer.email: [("Invitation", "Room 9"), ("Cancelled", "Room 9")],
    }
