"""Sign-in, sign-out, deactivation, Argon2id and the user CLI."""
from __future__ import annotations

from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.auth import services
from mdt.auth.models import Discipline, Role, User
from mdt.extensions import db

from .factories import PASSWORD


def test_password_is_stored_as_argon2id(make):
    user = services.create_user(actor=None, email="A.Person@Example.org", name="A Person",
                                discipline=Discipline.ORTHOPAEDICS, roles=[Role.SPECIALIST],
                                password="long enough password")
    db.session.commit()
    assert user.email == "a.person@example.org"
    assert user.password_hash.startswith("$argon2id$")
    assert "long enough password" not in user.password_hash


def test_sign_in_is_case_insensitive_and_audited(client, make):
    user = make.user(email="doc@example.org")
    response = client.post("/login", data={"email": "DOC@Example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id))
    assert "auth.login" in list(actions)


def test_wrong_password_shows_error_next_to_field_and_is_audited(client, make):
    make.user(email="doc@example.org")
    response = client.post("/login", data={"email": "doc@example.org", "password": "wrong"})
    assert response.status_code == 200
    assert "E-mail or password not recognised" in response.get_data(as_text=True)
    assert 'value="doc@example.org"' in response.get_data(as_text=True)
    failed = db.session.scalars(select(AuditEntry)
                                .where(AuditEntry.action == "auth.login_failed")).one()
    assert failed.data["reason"] == "wrong password"


def test_deactivated_account_cannot_sign_in(client, make):
    make.user(email="gone@example.org", is_active=False)
    response = client.post("/login", data={"email": "gone@example.org", "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/").status_code == 302


def test_deactivating_ends_an_existing_session(client, make, login_as):
    user = make.user()
    login_as(user)
    assert client.get("/").status_code == 200
    user.is_active = False
    db.session.commit()
    assert client.get("/").status_code == 302


def test_sign_out_is_post_only(client, make, login_as):
    login_as(make.user())
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_open_redirect_is_refused(client, make):
    make.user(email="doc@example.org")
    response = client.post("/login?next=https://evil.example/", data={
        "email": "doc@example.org", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_cli_creates_user_with_password_from_environment(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["user", "create", "--email", "New@Example.org",
                                 "--name", "New Person",
                                 "--discipline", "orthopaedics", "--role", "specialist",
                                 "--role", "clinician"],
                           env={"MDT_NEW_USER_PASSWORD": "a long password"})
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User).where(User.email == "new@example.org")).one()
    assert user.roles == {Role.SPECIALIST, Role.CLINICIAN}
    assert "a long password" not in result.output


def test_cli_refuses_short_password(app):
    result = app.test_cli_runner().invoke(
        args=["user", "create", "--email", "x@example.org", "--name", "X", "--role", "admin"],
        env={"MDT_NEW_USER_PASSWORD": "short"})
    assert result.exit_code != 0
    assert "at least" in result.output


def test_admin_adds_edits_and_deactivates_user(client, make, login_as):
    login_as(make.admin())
    response = client.post("/admin/users/new", data={
        "name": "Dr New", "email": "new@example.org", "discipline": "orthopaedics",
        "roles": ["specialist"], "password": "a long password", "is_active": "y"})
    assert response.status_code == 302
    user = services.find_by_email("new@example.org")
    response = client.post(f"/admin/users/{user.id}", data={
        "name": "Dr New", "email": "new@example.org", "discipline": "orthopaedics",
        "roles": ["specialist", "clinician"]})  # is_active unticked
    assert response.status_code == 302
    db.session.expire_all()
    assert user.is_active is False
    assert user.roles == {Role.SPECIALIST, Role.CLINICIAN}


def test_admin_form_errors_keep_what_was_typed(client, make, login_as):
    login_as(make.admin())
    make.user(email="taken@example.org")
    response = client.post("/admin/users/new", data={
        "name": "Dr Typed", "email": "taken@example.org", "discipline": "orthopaedics",
        "roles": ["specialist"], "password": "a long password"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Already in use." in body
    assert 'value="Dr Typed"' in body


def test_non_admin_cannot_manage_users(client, make, login_as):
    login_as(make.coordinator())
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/new", data={}).status_code == 403


def test_csrf_is_enforced_on_forms(app, make):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        make.user(email="doc@example.org")
        client = app.test_client()
        response = client.post("/login", data={"email": "doc@example.org", "password": PASSWORD})
        assert response.status_code == 400
        assert "Traceback" not in response.get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_form_fields_carry_aria_attributes_only_with_errors(client, make):
    body = client.get("/login").get_data(as_text=True)
    assert "None" not in body
    assert "aria-invalid" not in body
    make.user(email="doc@example.org")
    body = client.post("/login", data={"email": "doc@example.org",
                                       "password": "wrong"}).get_data(as_text=True)
    assert 'aria-invalid="true"' in body and 'aria-describedby="password-err"' in body


def test_too_many_failed_sign_ins_make_the_account_wait(client, make, frozen_clock):
    from datetime import timedelta

    from mdt import clock

    start = frozen_clock(clock.now())
    make.user(email="doc@example.org")
    for _ in range(5):
        client.post("/login", data={"email": "doc@example.org", "password": "guess"})
    response = client.post("/login", data={"email": "doc@example.org", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in
    actions = list(db.session.scalars(select(AuditEntry.action)))
    assert actions.count("auth.login_failed") == 5 and "auth.login_throttled" in actions

    frozen_clock(start + timedelta(minutes=16))
    response = client.post("/login", data={"email": "doc@example.org", "password": PASSWORD})
    assert response.status_code == 302 and client.get("/").status_code == 200


def test_a_successful_sign_in_clears_earlier_failures(client, make, frozen_clock):
    from datetime import timedelta

    from mdt import clock

    start = frozen_clock(clock.now())
    make.user(email="doc@example.org")
    for _ in range(4):
        client.post("/login", data={"email": "doc@example.org", "password": "guess"})
    frozen_clock(start + timedelta(seconds=1))
    assert client.post("/login", data={"email": "doc@example.org",
                                       "password": PASSWORD}).status_code == 302
    client.post("/logout")
    frozen_clock(start + timedelta(seconds=2))
    for _ in range(4):
        client.post("/login", data={"email": "doc@example.org", "password": "guess"})
    response = client.post("/login", data={"email": "doc@example.org", "password": PASSWORD})
    assert response.status_code == 302
