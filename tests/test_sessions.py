"""Sessions end when they should: sign-out, password reset, deactivation, "sign out everywhere",
the idle timeout and the remember-me lifetime; copied cookies stop working with them.

Cookies are copied from one test client to another, as an attacker who read
them from a shared computer or a proxy log would replay them.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.auth.models import User
from mdt.extensions import db

from .factories import PASSWORD

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NEW_PASSWORD = "a brand new password"


def sign_in(client: FlaskClient, email: str, *, remember: bool = True,
            password: str = PASSWORD, next_url: str | None = None):
    data = {"email": email, "password": password, **({"remember": "y"} if remember else {})}
    url = "/login" + (f"?next={next_url}" if next_url else "")
    response = client.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def copy_of(app, client: FlaskClient, *names: str) -> FlaskClient:
    """A new browser holding copies of ``client``'s cookies ``names``."""
    thief = app.test_client()
    for name in names:
        cookie = cookie_of(client, name)
        assert cookie is not None, f"no {name} cookie to copy"
        thief.set_cookie(name, cookie.value, domain=cookie.domain)
    return thief


def cookie_of(client: FlaskClient, name: str):
    """The client's cookie ``name`` (set for the host of MDT_BASE_URL), or None."""
    return client.get_cookie(name, domain=client.application.config["SERVER_NAME"])


def login_redirect(response) -> str | None:
    """The ``next`` of a redirect to the sign-in page (decoded), or None."""
    location = urlsplit(response.headers["Location"])
    assert response.status_code == 302 and location.path == "/login"
    return parse_qs(location.query).get("next", [None])[0]


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def edit_form(user: User, **changes) -> dict:
    data = {"name": user.name, "email": user.email, "discipline": user.discipline.value,
            "roles": sorted(r.value for r in user.roles), "is_active": "y"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def doctor(make):
    return make.specialist(email="doc@example.org")


def test_sign_out_ends_copies_of_the_session_and_the_remember_cookie(app, client, doctor):
    sign_in(client, "doc@example.org")
    session_copy = copy_of(app, client, "session")
    remember_copy = copy_of(app, client, "remember_token")
    laptop = app.test_client()
    sign_in(laptop, "doc@example.org", remember=False)
    assert signed_in(session_copy) and signed_in(remember_copy) and signed_in(laptop)

    response = client.post("/logout")
    assert response.status_code == 302
    assert "You are signed out" in client.get("/login").get_data(as_text=True)
    assert not signed_in(client)
    assert not signed_in(session_copy)
    assert not signed_in(remember_copy)
    assert not signed_in(laptop)  # sign-out ends every session of that person
    assert any(e.action == "auth.logout" and e.actor_id == doctor.id
               for e in db.session.scalars(select(AuditEntry)))


def test_sign_out_deletes_the_remember_cookie_from_the_browser(client, doctor):
    sign_in(client, "doc@example.org")
    assert cookie_of(client, "remember_token") is not None
    client.post("/logout")
    assert cookie_of(client, "remember_token") is None


def test_a_password_reset_ends_every_session(app, client, make, login_as, doctor):
    sign_in(client, "doc@example.org")
    session_copy = copy_of(app, client, "session")
    remember_copy = copy_of(app, client, "remember_token")
    admin = login_as(make.admin(), on=app.test_client())
    response = admin.post(f"/admin/users/{doctor.id}",
                          data=edit_form(doctor, password=NEW_PASSWORD))
    assert response.status_code == 302
    assert not signed_in(client) and not signed_in(session_copy)
    assert not signed_in(remember_copy)
    sign_in(app.test_client(), "doc@example.org", password=NEW_PASSWORD)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.updated")).one()
    assert entry.data["sessions"] == ["…", "ended"]


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(app, client, make,
                                                                           login_as, doctor):
    sign_in(client, "doc@example.org")
    remember_copy = copy_of(app, client, "remember_token")
    session_copy = copy_of(app, client, "session")
    admin = login_as(make.admin(), on=app.test_client())
    assert admin.post(f"/admin/users/{doctor.id}",
                      data=edit_form(doctor, is_active=None)).status_code == 302
    assert not signed_in(remember_copy) and not signed_in(session_copy)
    db.session.expire_all()
    response = admin.post(f"/admin/users/{doctor.id}", data=edit_form(doctor))
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, doctor.id).is_active
    assert not signed_in(remember_copy) and not signed_in(session_copy) and not signed_in(client)


def test_an_admin_signs_a_user_out_everywhere(app, client, make, login_as, doctor):
    sign_in(client, "doc@example.org")
    session_copy = copy_of(app, client, "session")
    remember_copy = copy_of(app, client, "remember_token")
    admin_user = make.admin()
    admin = login_as(admin_user, on=app.test_client())
    assert "Sign out everywhere" in admin.get(f"/admin/users/{doctor.id}").get_data(as_text=True)
    assert admin.get(f"/admin/users/{doctor.id}/sign-out").status_code == 405

    response = admin.post(f"/admin/users/{doctor.id}/sign-out")
    assert response.status_code == 302
    assert not signed_in(client)
    assert not signed_in(session_copy)
    assert not signed_in(remember_copy)
    assert signed_in(admin)
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "user.signed_out_everywhere")).one()
    assert (entry.actor_id, entry.object_id) == (admin_user.id, doctor.id)
    sign_in(client, "doc@example.org")  # they sign in again with their password
    assert signed_in(client)


def test_only_an_admin_signs_others_out_and_the_form_needs_its_csrf_token(app, make, login_as,
                                                                           doctor):
    coordinator = login_as(make.coordinator(), on=app.test_client())
    assert coordinator.post(f"/admin/users/{doctor.id}/sign-out").status_code == 403
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        admin = login_as(make.admin(), on=app.test_client())
        assert admin.post(f"/admin/users/{doctor.id}/sign-out").status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    db.session.expire_all()
    assert db.session.get(User, doctor.id).session_generation == 1


def test_an_admin_who_changes_their_own_password_stays_signed_in_here_only(app, make):
    admin_user = make.admin(email="admin@example.org")
    client = app.test_client()
    sign_in(client, "admin@example.org")
    other_device = copy_of(app, client, "session")
    response = client.post(f"/admin/users/{admin_user.id}",
                           data=edit_form(admin_user, password=NEW_PASSWORD))
    assert response.status_code == 302
    assert signed_in(client)
    assert not signed_in(other_device)


def test_the_remember_cookie_lasts_14_days_checked_by_the_server(app, client, doctor,
                                                                 frozen_clock):
    frozen_clock(T0)
    sign_in(client, "doc@example.org")
    cookie = cookie_of(client, "remember_token")
    lifetime = cookie.expires - datetime.now(UTC)
    assert timedelta(days=14) - timedelta(minutes=5) < lifetime <= timedelta(days=14)

    frozen_clock(T0 + timedelta(days=13, hours=23))
    assert signed_in(copy_of(app, client, "remember_token"))  # after the browser was closed
    frozen_clock(T0 + timedelta(days=14, minutes=1))
    late = copy_of(app, client, "remember_token")  # a browser that ignores the expiry date
    assert not signed_in(late)
    assert cookie_of(late, "remember_token") is None  # and it is told to drop it


def test_each_sign_in_gets_its_own_remember_cookie(app, doctor, frozen_clock):
    first, second = app.test_client(), app.test_client()
    frozen_clock(T0)
    sign_in(first, "doc@example.org")
    frozen_clock(T0 + timedelta(minutes=1))
    sign_in(second, "doc@example.org")
    assert cookie_of(first, "remember_token").value != cookie_of(second, "remember_token").value


def test_remember_me_can_be_turned_off(app, client, doctor, monkeypatch):
    monkeypatch.setitem(app.config, "REMEMBER_COOKIE_DURATION", timedelta(0))
    assert "Keep me signed in" not in client.get("/login").get_data(as_text=True)
    sign_in(client, "doc@example.org", remember=True)
    assert cookie_of(client, "remember_token") is None


def test_an_idle_session_is_signed_out_and_returns_to_its_page(app, client, doctor,
                                                               frozen_clock):
    frozen_clock(T0)
    sign_in(client, "doc@example.org")
    frozen_clock(T0 + timedelta(minutes=29))
    assert client.get("/cases").status_code == 200  # activity: the clock starts again
    frozen_clock(T0 + timedelta(minutes=29 + 31))
    response = client.get("/cases?closed=1")
    assert login_redirect(response) == "/cases?closed=1"
    assert cookie_of(client, "remember_token") is None  # remember-me does not bring it back
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were signed out after 30 minutes without activity" in page
    assert not signed_in(client)

    again = sign_in(client, "doc@example.org", next_url="%2Fcases%3Fclosed%3D1")
    assert again.headers["Location"] == "/cases?closed=1"


def test_a_copied_session_cookie_is_refused_once_idle(app, client, doctor, frozen_clock):
    frozen_clock(T0)
    sign_in(client, "doc@example.org", remember=False)
    thief = copy_of(app, client, "session")
    frozen_clock(T0 + timedelta(minutes=31))
    assert not signed_in(thief)


def test_the_idle_timeout_is_configurable(app, client, doctor, frozen_clock, monkeypatch):
    monkeypatch.setitem(app.config, "IDLE_TIMEOUT_MINUTES", 5)
    frozen_clock(T0)
    sign_in(client, "doc@example.org", remember=False)
    frozen_clock(T0 + timedelta(minutes=4))
    assert signed_in(client)
    frozen_clock(T0 + timedelta(minutes=10))
    response = client.get("/meetings")
    assert login_redirect(response) == "/meetings"
    assert "after 5 minutes without activity" in client.get("/login").get_data(as_text=True)


def test_a_form_posted_after_the_idle_timeout_changes_nothing(app, client, make, doctor,
                                                              frozen_clock):
    frozen_clock(T0)
    sign_in(client, "doc@example.org", remember=False)
    frozen_clock(T0 + timedelta(hours=2))
    response = client.post("/notifications/calendar-feed",
                           headers={"Referer": "http://mdt.test/notifications/preferences"})
    assert login_redirect(response) == "/notifications/preferences"
    from mdt.notifications.models import CalendarFeedToken
    assert db.session.scalars(select(CalendarFeedToken)).first() is None


def test_the_csrf_token_changes_at_sign_in(app, doctor, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    client = app.test_client()

    def token(html: str) -> str:
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    before = token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "doc@example.org", "password": PASSWORD,
                                           "csrf_token": before})
    assert response.status_code == 302
    after = token(client.get("/").get_data(as_text=True))
    assert client.post("/notifications/read-all", data={"csrf_token": before}).status_code == 400
    assert client.post("/notifications/read-all", data={"csrf_token": after}).status_code == 302


def test_a_session_from_before_generations_is_refused(app, client, doctor, login_as):
    login_as(doctor)
    assert signed_in(client)
    with client.session_transaction() as sess:
        sess["_user_id"] = str(doctor.id)  # what sessions held before this change
    assert not signed_in(client)


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "/%09/evil.example/",
    "/cases%0d%0aSet-Cookie:%20x=y", "javascript:alert(1)", "cases",
])
def test_next_never_leaves_the_site_nor_injects_headers(client, doctor, target):
    response = sign_in(client, "doc@example.org", next_url=target)
    assert response.headers["Location"] == "/"
    assert "Set-Cookie: x" not in str(response.headers)


def test_next_keeps_a_path_on_this_site(client, doctor):
    response = sign_in(client, "doc@example.org", next_url="/cases%3Fclosed%3D1")
    assert response.headers["Location"] == "/cases?closed=1"
