"""The sign-in lock-out: one answer for registered and unknown addresses, counted atomically."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mdt.audit.models import AuditEntry
from mdt.auth import services
from mdt.extensions import db

from .factories import PASSWORD

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def answers(client, email: str, attempts: int) -> list[tuple[int, str]]:
    """Status and error message of ``attempts`` wrong passwords for ``email``."""
    out = []
    for _ in range(attempts):
        response = client.post("/login", data={"email": email, "password": "a wrong guess"})
        html = response.get_data(as_text=True)
        message = html.split('id="password-err">', 1)[1].split("<", 1)[0]
        out.append((response.status_code, message))
    return out


def test_registered_and_unknown_addresses_get_the_same_answers(app, make, frozen_clock):
    frozen_clock(T0)
    make.user(email="doc@example.org")
    known = answers(app.test_client(), "doc@example.org", 7)
    unknown = answers(app.test_client(), "nobody@example.org", 7)
    assert known == unknown
    assert [status for status, _ in known] == [200] * 5 + [429] * 2
    assert "Too many failed sign-ins" in known[-1][1]
    # Both wait 15 minutes from the fifth failure, then may try again.
    frozen_clock(T0 + timedelta(minutes=14))
    assert answers(app.test_client(), "nobody@example.org", 1)[0][0] == 429
    frozen_clock(T0 + timedelta(minutes=16))
    assert answers(app.test_client(), "nobody@example.org", 1)[0][0] == 200
    response = app.test_client().post("/login", data={"email": "doc@example.org",
                                                      "password": PASSWORD})
    assert response.status_code == 302


def test_the_lock_applies_to_the_address_in_any_case(app, make, frozen_clock):
    frozen_clock(T0)
    make.user(email="doc@example.org")
    answers(app.test_client(), "doc@example.org", 5)
    assert answers(app.test_client(), " DOC@Example.org ", 1)[0][0] == 429


def test_a_password_reset_by_an_admin_lifts_the_lock(app, make, login_as, frozen_clock):
    frozen_clock(T0)
    user = make.specialist(email="doc@example.org")
    answers(app.test_client(), "doc@example.org", 6)
    admin = login_as(make.admin(), on=app.test_client())
    admin.post(f"/admin/users/{user.id}", data={
        "name": user.name, "email": user.email, "discipline": user.discipline.value,
        "roles": ["specialist"], "is_active": "y", "password": "a brand new password"})
    response = app.test_client().post("/login", data={"email": "doc@example.org",
                                                      "password": "a brand new password"})
    assert response.status_code == 302


def _guess_at_once(app, email: str, guessers: int) -> list[int]:
    """``guessers`` wrong sign-ins at the same moment, each in its own thread and client."""
    barrier = threading.Barrier(guessers)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def guess():
        try:
            client = app.test_client()
            barrier.wait(timeout=20)
            response = client.post("/login", data={"email": email, "password": "wrong guess"})
            statuses.append(response.status_code)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=guess) for _ in range(guessers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return statuses


@pytest.mark.parametrize("email", ["doc@example.org", "nobody@example.org"])
def test_simultaneous_guesses_check_at_most_five_passwords(app, make, monkeypatch, email):
    make.user(email="doc@example.org")
    checks: list[str] = []
    real_verify = services.verify_password

    def counting_verify(password_hash, password):
        checks.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(services, "verify_password", counting_verify)
    statuses = _guess_at_once(app, email, 24)
    assert len(checks) == services.THROTTLE_FAILURES
    assert sorted(statuses) == [200] * 5 + [429] * 19
    failed = db.session.scalar(select(func.count(AuditEntry.id))
                               .where(AuditEntry.action == "auth.login_failed"))
    assert failed == 5


def test_take_counts_up_to_the_limit_then_waits_a_whole_window(frozen_clock):
    from mdt.auth import throttle

    frozen_clock(T0)
    window = timedelta(minutes=10)
    assert [throttle.take("k", 3, window) for _ in range(4)] == [True, True, True, False]
    frozen_clock(T0 + timedelta(minutes=9))
    assert throttle.take("k", 3, window) is False
    frozen_clock(T0 + timedelta(minutes=10))
    assert throttle.take("k", 3, window) is True
    throttle.reset("k")
    assert [throttle.take("k", 3, window) for _ in range(3)] == [True, True, True]
    assert throttle.take("other", 3, window) is True
