"""The real worker path: a ``celery worker`` process, a real broker, a real SMTP server.

The test process writes notification rows (due in the past: time is set,
not slept through) and runs the dispatcher in-process, publishing to the
same broker; the worker process claims, renders and sends to an aiosmtpd
server in this process. Assertions count what the SMTP server received.
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mdt import clock
from mdt.extensions import db
from mdt.notifications import broker, delivery
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .conftest import need_server
from .helpers.processes import RedisServer, Worker, redis_reachable, wait_for, worker_env
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
def start_worker(app, database_url, smtp, tmp_path):
    workers: list[Worker] = []

    def start(broker_url: str, queue: str, **extra) -> Worker:
        env = worker_env(database_url=database_url, broker_url=broker_url, instance=tmp_path,
                         smtp_port=smtp.port, queue=queue, **extra)
        worker = Worker(env, tmp_path / f"worker{len(workers)}.log")
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
    assert delivery.dispatch().published == 3
    wait_until_sent(ids, worker)
    assert_each_arrived_once(smtp, ids, people, meeting)
    # A second dispatcher pass finds nothing more to do.
    assert delivery.dispatch().published == 0
    assert len(smtp.sink.snapshot()) == 3
