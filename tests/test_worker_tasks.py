"""The Celery app's settings, the beat schedule and the task bodies, called in-process."""
from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage

import pytest

from mdt import clock
from mdt.delivery import broker, dispatcher
from mdt.delivery import services as delivery
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus
from worker import tasks
from worker.schedule import beat_schedule

from .factories import utc

NOW = utc(2026, 12, 3, 9, 0)
S = NotificationStatus


@pytest.fixture
def row(make, frozen_clock):
    frozen_clock(NOW)
    notification = Notification(kind=NotificationKind.ACTION_DUE, recipient=make.clinician(),
                                due_at=NOW - timedelta(minutes=1), dedup_key="task:1")
    db.session.add(notification)
    db.session.commit()
    return notification


class FlakyBackend:
    def __init__(self, failures: int) -> None:
        self.failures, self.sent = failures, 0

    def send(self, message, *, key):
        if self.failures:
            self.failures -= 1
            raise smtplib.SMTPResponseException(421, b"service not available")
        self.sent += 1


@pytest.fixture
def flaky(monkeypatch):
    import mdt.notifications.render as render

    def message(notification):
        msg = EmailMessage()
        msg["Subject"] = "Action due"
        msg.set_content("An action is due.")
        return msg

    monkeypatch.setattr(render, "build_message", message)

    def install(failures: int) -> FlakyBackend:
        backend = FlakyBackend(failures)
        monkeypatch.setattr(delivery, "get_backend", lambda config: backend)
        return backend

    return install


def test_celery_settings_follow_the_design(app, celery_app):
    conf = celery_app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost,
            conf.worker_prefetch_multiplier) == (True, True, 1)
    assert (conf.task_serializer, list(conf.accept_content), conf.task_ignore_result) == (
        "json", ["json"], True)
    assert conf.task_publish_retry is False
    assert conf.task_default_queue == app.config["BROKER_QUEUE"]
    assert conf.broker_url == app.config["BROKER_URL"]
    redis = broker.celery_settings({**app.config, "BROKER_URL": "redis://r:6379/0",
                                    "BROKER_VISIBILITY_TIMEOUT": 1800})
    assert redis["broker_transport_options"]["visibility_timeout"] == 1800
    assert {broker.DELIVER_TASK, broker.DISPATCH_TASK} <= set(celery_app.tasks)
    assert app.extensions["celery"] is celery_app


def test_beat_runs_the_dispatcher_every_minute_and_drops_stale_runs(celery_app):
    (entry,) = beat_schedule().values()
    assert entry["task"] == broker.DISPATCH_TASK
    assert entry["schedule"] == 60.0
    assert entry["options"]["expires"] < entry["schedule"]
    assert celery_app.conf.beat_schedule == beat_schedule()


def test_deliver_task_leaves_a_failed_row_waiting_in_the_database_not_in_a_countdown(
        app, celery_app, row, flaky, monkeypatch):
    backend = flaky(failures=1)
    retries: list[object] = []
    monkeypatch.setattr(celery_app.tasks[broker.DELIVER_TASK], "retry",
                        lambda *a, **kw: retries.append(kw))
    assert tasks.deliver.apply(args=[[row.id]]).get() == "retry"
    assert retries == []  # no Celery retry, no countdown
    db.session.expire_all()
    assert (row.status, row.next_attempt_at) == (S.PENDING, NOW + timedelta(seconds=10))
    published: list[int] = []
    monkeypatch.setattr(dispatcher, "publish_deliver", published.extend)
    clock.set_now(NOW + timedelta(seconds=10))
    run = tasks.dispatch.apply().get()
    assert (run["published"], run["probed"]) == (1, None)  # due: no probe needed
    assert tasks.deliver.apply(args=[published]).get() == "sent"
    assert backend.sent == 1
    db.session.expire_all()
    assert (row.status, row.attempts) == (S.SENT, 2)
    assert tasks.deliver.apply(args=[[row.id]]).get() == "skipped"


def test_dispatch_task_publishes_due_rows(app, celery_app, row, monkeypatch):
    published: list[int] = []
    monkeypatch.setattr(dispatcher, "publish_deliver", published.extend)
    outcome = tasks.dispatch.apply().get()
    assert outcome == {"ran": True, "released": 0, "published": 1, "unpublished": 0,
                       "error": None, "probed": None}
    assert published == [row.id]
