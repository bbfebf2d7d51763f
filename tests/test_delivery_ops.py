"""Operations: the ``notifications`` CLI and the /admin/notifications page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mdt import clock
from mdt.audit.models import AuditEntry
from mdt.delivery import dispatcher
from mdt.extensions import db
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .factories import utc

NOW = utc(2026, 12, 3, 9, 0)
S = NotificationStatus


@pytest.fixture(autouse=True)
def _now(frozen_clock):
    frozen_clock(NOW)


def add(user, status=S.PENDING, due=NOW - timedelta(minutes=5), **kw) -> Notification:
    row = Notification(kind=NotificationKind.ACTION_DUE, recipient=user, due_at=due,
                       status=status, dedup_key=f"ops:{user.id}:{status}:{due}", **kw)
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["notifications", *args])


def test_status_command_counts_and_warns_when_dispatcher_is_silent(make, cli):
    user = make.clinician()
    add(user, due=NOW - timedelta(hours=2))
    add(user, S.FAILED, last_error="550 no such user")
    result = cli("status")
    assert result.exit_code == 0
    assert "   pending: 1" in result.output and "    failed: 1" in result.output
    assert "oldest pending due: Thu 03 Dec 2026, 15:00 CST (Thu 03 Dec 2026, 07:00 UTC)" \
        in result.output
    assert "last dispatcher run: never" in result.output
    assert "WARNING: the dispatcher has not run for 5 minutes" in result.output


def test_dispatch_command_runs_one_pass_and_status_shows_it(make, cli, monkeypatch):
    user = make.clinician()
    row = add(user)
    published: list[int] = []
    monkeypatch.setattr(dispatcher, "publish_deliver", published.extend)
    result = cli("dispatch")
    assert result.exit_code == 0, result.output
    assert "published 1" in result.output
    assert published == [row.id]
    status = cli("status")
    assert "last dispatcher run: Thu 03 Dec 2026, 17:00 CST" in status.output
    assert "published 1" in status.output and "WARNING" not in status.output


def test_dispatch_command_reports_a_broker_that_is_down(make, cli, app, monkeypatch):
    add(make.clinician())
    # A broker that cannot be reached (Redis down is in test_worker_faults.py).
    monkeypatch.setitem(app.config, "BROKER_URL", "sqla+sqlite:////nonexistent/dir/broker.sqlite")
    app.extensions.pop("mdt_publisher", None)
    try:
        result = cli("dispatch")
    finally:
        app.extensions.pop("mdt_publisher", None)
    assert result.exit_code == 1
    assert "left 1 for the next run" in result.output
    assert "publishing failed" in result.output
    assert db.session.scalars(select(Notification.status)).one() == S.PENDING


def test_resend_command(make, cli):
    row = add(make.clinician(), S.FAILED, attempts=6, last_error="451")
    result = cli("resend", str(row.id))
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert (row.status, row.attempts) == (S.PENDING, 0)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["notification.resend"]
    again = cli("resend", str(row.id))
    assert again.exit_code == 1 and "only failed, cancelled or sent" in again.output
    assert cli("resend", "999999").exit_code == 1


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_ops_page_shows_counts_failures_and_a_stale_dispatcher(make, client, login_as, role):
    user = make.clinician(name="Dr Failing Address")
    add(user, S.FAILED, last_error="550 5.1.1 mailbox unavailable", attempts=1)
    add(user, S.SENT, due=NOW - timedelta(days=1))
    login_as(getattr(make, role)())
    page = client.get("/admin/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Dr Failing Address" in html and "550 5.1.1 mailbox unavailable" in html
    assert "The dispatcher has never run." in html
    assert "<dt>Failed</dt><dd>1</dd>" in html and "<dt>Sent</dt><dd>1</dd>" in html


def test_ops_page_warns_only_when_the_last_run_is_old(make, client, login_as):
    login_as(make.admin())
    dispatcher.dispatch(lambda _id: None)
    assert "has not run" not in client.get("/admin/notifications").get_data(as_text=True)
    clock.set_now(NOW + timedelta(minutes=6))
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "The dispatcher has not run for 5 minutes" in html


@pytest.mark.parametrize("role", ["specialist", "clinician"])
def test_ops_page_and_resend_are_forbidden_to_others(make, client, login_as, role):
    row = add(make.clinician(), S.FAILED)
    login_as(getattr(make, role)())
    assert client.get("/admin/notifications").status_code == 403
    assert client.post(f"/admin/notifications/{row.id}/resend").status_code == 403
    db.session.expire_all()
    assert row.status == S.FAILED


def test_ops_page_needs_sign_in(client):
    assert client.get("/admin/notifications").status_code in (302, 401)


def test_resend_button_queues_the_row_again(make, client, login_as):
    row = add(make.clinician(), S.FAILED, attempts=6)
    coordinator = make.coordinator()
    login_as(coordinator)
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert f'action="/admin/notifications/{row.id}/resend"' in html
    response = client.post(f"/admin/notifications/{row.id}/resend", follow_redirects=True)
    assert response.status_code == 200
    assert f"Notification {row.id} will be sent again" in response.get_data(as_text=True)
    db.session.expire_all()
    assert (row.status, row.attempts) == (S.PENDING, 0)
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor_id) == ("notification.resend", coordinator.id)
    # A second click: the row is pending now; a clear message, nothing changes.
    again = client.post(f"/admin/notifications/{row.id}/resend", follow_redirects=True)
    assert "only failed, cancelled or sent" in again.get_data(as_text=True)
    assert client.post("/admin/notifications/999999/resend").status_code == 404


def test_resend_needs_a_csrf_token(make, client, login_as, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    row = add(make.clinician(), S.FAILED)
    login_as(make.admin())
    assert client.post(f"/admin/notifications/{row.id}/resend").status_code == 400
    db.session.expire_all()
    assert row.status == S.FAILED


def test_ops_page_runs_a_fixed_number_of_queries(make, client, login_as, count_queries):
    login_as(make.admin())

    def queries_with(failed: int) -> int:
        for _ in range(failed):
            add(make.clinician(), S.FAILED, due=NOW - timedelta(minutes=failed + _))
        with count_queries() as counter:
            assert client.get("/admin/notifications").status_code == 200
        return len(counter)

    assert queries_with(1) == queries_with(8)


def test_nav_links_the_delivery_page_for_coordinators_only(make, client, login_as):
    login_as(make.coordinator())
    assert 'href="/admin/notifications"' in client.get(
        "/admin/notifications").get_data(as_text=True)
    login_as(make.specialist())
    home = client.get("/")
    assert home.status_code == 200 and 'class="mainnav"' in home.get_data(as_text=True)
    assert 'href="/admin/notifications"' not in home.get_data(as_text=True)


def retrying_row(user, *, error="ConnectionRefusedError: [Errno 111] Connection refused",
                 since=NOW - timedelta(minutes=40)) -> Notification:
    return add(user, attempts=9, failing_since=since, last_error=error,
               due=NOW - timedelta(minutes=41))


def test_ops_page_shows_a_banner_and_the_rows_retrying_while_delivery_fails(make, client,
                                                                           login_as):
    user = make.clinician(name="Dr Waiting")
    row = retrying_row(user)
    row.next_attempt_at = NOW + timedelta(minutes=5)
    db.session.commit()
    login_as(make.coordinator())
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "Delivery is failing:" in html
    assert "1 notification\n  could not be sent and is being retried" in html
    assert "failing since Thu 03 Dec 2026, 16:20 CST" in html
    assert "last error: ConnectionRefusedError: [Errno 111] Connection refused" in html
    assert "backing off to every 5 min, for up to 24 h" in html
    assert "<dt>Retrying</dt><dd>1 (of the pending)</dd>" in html
    assert "Dr Waiting" in html and "Thu 03 Dec 2026, 17:05 CST" in html  # the next attempt
    assert "No failed notifications." in html


def test_ops_page_has_no_banner_while_nothing_waits_for_a_retry(make, client, login_as):
    add(make.clinician())  # pending, never failed
    login_as(make.admin())
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "Delivery is failing" not in html
    assert "No notification is waiting to be retried." in html


def test_resend_all_failed_from_the_page(make, client, login_as):
    user = make.clinician()
    failed = [add(user, S.FAILED, due=NOW - timedelta(minutes=i), attempts=7, last_error="550")
              for i in range(1, 4)]
    add(user, S.SENT, due=NOW - timedelta(hours=1))
    coordinator = make.coordinator()
    login_as(coordinator)
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert 'action="/admin/notifications/resend-failed"' in html and "Resend all 3 failed" in html
    page = client.post("/admin/notifications/resend-failed", follow_redirects=True)
    assert "3 failed notifications will be sent again within a minute." in page.get_data(
        as_text=True)
    db.session.expire_all()
    assert [(r.status, r.attempts, r.last_error) for r in failed] == [(S.PENDING, 0, None)] * 3
    entries = db.session.scalars(select(AuditEntry)).all()
    assert sorted(e.object_id for e in entries) == sorted(r.id for r in failed)
    assert {(e.action, e.actor_id) for e in entries} == {("notification.resend", coordinator.id)}
    again = client.post("/admin/notifications/resend-failed", follow_redirects=True)
    assert "There are no failed notifications to resend." in again.get_data(as_text=True)


@pytest.mark.parametrize("role", ["specialist", "clinician"])
def test_resend_all_failed_is_forbidden_to_others(make, client, login_as, role):
    row = add(make.clinician(), S.FAILED)
    login_as(getattr(make, role)())
    assert client.post("/admin/notifications/resend-failed").status_code == 403
    db.session.expire_all()
    assert row.status == S.FAILED


def test_resend_all_failed_needs_a_csrf_token_and_a_post(make, client, login_as, app,
                                                         monkeypatch):
    row = add(make.clinician(), S.FAILED)
    login_as(make.admin())
    assert client.get("/admin/notifications/resend-failed").status_code == 405
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    assert client.post("/admin/notifications/resend-failed").status_code == 400
    db.session.expire_all()
    assert row.status == S.FAILED


def test_resend_failed_command_and_status_show_the_retries(make, cli):
    user = make.clinician()
    failed = [add(user, S.FAILED, due=NOW - timedelta(minutes=i)) for i in (1, 2)]
    retrying_row(user)
    status = cli("status")
    assert "  retrying: 1 (failing since Thu 03 Dec 2026, 16:20 CST" in status.output
    assert ("WARNING: delivery is failing: 1 notifications are waiting to be retried; last "
            "error: ConnectionRefusedError") in status.output
    result = cli("resend-failed")
    assert result.exit_code == 0, result.output
    assert "2 failed notifications pending again" in result.output
    db.session.expire_all()
    assert [r.status for r in failed] == [S.PENDING, S.PENDING]
    assert cli("resend-failed").output.startswith("0 failed notifications")


def test_the_stale_warning_names_the_broker_as_the_likely_cause(make, client, login_as, cli,
                                                                app, monkeypatch):
    monkeypatch.setitem(app.config, "BROKER_URL",
                        "redis://:s3cret-password@redis.internal:6380/2")
    login_as(make.admin())
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "The dispatcher has never run." in html
    assert ("The likely cause: Redis at redis.internal:6380/2 (MDT_BROKER_URL) is unreachable. "
            "Beat then cannot publish the dispatcher at all, so no run is recorded.") in html
    status = cli("status")
    assert "not run for 5 minutes. The likely cause: Redis at redis.internal:6380/2" in \
        status.output
    assert "s3cret" not in html and "s3cret" not in status.output
