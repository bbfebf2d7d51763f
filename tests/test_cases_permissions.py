"""Who may do what on case routes: a routes × roles matrix.

Reading a case one may not see is 404 (its existence must not leak); changing a
case one may read but not change is 403; anonymous visitors go to sign-in.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mdt.audit.models import AuditEntry
from mdt.extensions import db

from .test_cases_views import sign_consensus

ROLES = ("admin", "coordinator", "specialist", "referrer", "other_clinician", "anonymous")


@pytest.fixture
def world(make):
    referrer = make.clinician()
    case = make.case(referrer=referrer)
    users = {"admin": make.admin(), "coordinator": make.coordinator(),
             "specialist": make.specialist(), "referrer": referrer,
             "other_clinician": make.clinician(), "anonymous": None}
    return case, users


def routes(case):
    ref = case.references[0].id
    edit = {"question": "Changed question", "version": "1", "primary_site": "Lung",
            "egfr_status": "not_tested", "alk_status": "not_tested", "ros1_status": "not_tested",
            "kras_status": "not_tested", "referrer_id": str(case.referring_clinician_id)}
    reference = {"kind": "imaging", "accession_number": "X1", "performed_on": "2026-01-02",
                 "description": "CT"}
    return {
        ("GET", "/cases", None): dict(admin=200, coordinator=200, specialist=200, referrer=200,
                                      other_clinician=200),
        ("GET", "/cases/new", None): dict(admin=403, coordinator=200, specialist=200,
                                          referrer=200, other_clinician=200),
        ("GET", f"/cases/{case.id}", None): dict(admin=200, coordinator=200, specialist=200,
                                                  referrer=200, other_clinician=404),
        ("GET", f"/cases/{case.id}/edit", None): dict(admin=403, coordinator=200, specialist=200,
                                                       referrer=200, other_clinician=404),
        ("POST", f"/cases/{case.id}/edit", "edit"): dict(admin=403, coordinator=302, specialist=302,
                                                          referrer=302, other_clinician=404),
        ("POST", f"/cases/{case.id}/references", "reference"): dict(
            admin=403, coordinator=302, specialist=302, referrer=302, other_clinician=404),
        ("POST", f"/cases/{case.id}/references/{ref}/retract", "retract"): dict(
            admin=403, coordinator=302, specialist=302, referrer=302, other_clinician=404),
        ("GET", f"/cases/{case.id}/history", None): dict(admin=200, coordinator=200, specialist=403,
                                                          referrer=403, other_clinician=403),
        ("GET", "/cases/999999", None): dict(admin=404, coordinator=404, specialist=404,
                                             referrer=404, other_clinician=404),
    }, {"edit": edit, "reference": reference, "retract": {"reason": "Entered twice"}}


@pytest.mark.parametrize("role", ROLES)
def test_routes_by_role(app, make, login_as, world, role):
    case, users = world
    table, bodies = routes(case)
    for (method, url, body), expected in table.items():
        client = app.test_client()
        if users[role] is not None:
            login_as(users[role], on=client)
        before = db.session.scalar(select(func.count(AuditEntry.id)))
        response = client.open(url, method=method, data=bodies.get(body))
        want = expected.get(role, 302)  # anonymous: redirected to sign-in
        assert response.status_code == want, (role, method, url, response.status_code)
        if role == "anonymous":
            assert "/login" in response.headers["Location"]
        db.session.expire_all()
        after = db.session.scalar(select(func.count(AuditEntry.id)))
        if want != 302 or role == "anonymous":
            assert after == before, (role, method, url, "a refused request changed something")


def test_a_hidden_case_looks_exactly_like_a_missing_one(client, make, login_as):
    case = make.case()
    login_as(make.clinician())
    hidden = client.get(f"/cases/{case.id}")
    missing = client.get("/cases/999999")
    assert hidden.status_code == missing.status_code == 404

    def main(response):
        html = response.get_data(as_text=True)
        return html[html.index("<main"):html.index("</main>")]

    assert main(hidden) == main(missing)


def test_nothing_changes_on_get(client, make, login_as):
    case = make.case()
    login_as(make.coordinator())
    for url in ("/cases", f"/cases/{case.id}", f"/cases/{case.id}/edit", "/cases/new"):
        client.get(url)
    assert client.get(f"/cases/{case.id}/references").status_code == 405
    assert db.session.scalar(select(func.count(AuditEntry.id))) == 0


def test_responsible_clinician_reads_but_does_not_change_the_case(client, make, login_as):
    responsible = make.clinician()
    item = make.item()
    sign_consensus(make, item, responsible)
    case_id = item.case_id
    login_as(responsible)
    html = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f"/cases/{case_id}/edit" not in html and f"/cases/{case_id}/agenda" not in html
    assert f'action="/cases/{case_id}/references"' not in html
    assert client.get(f"/cases/{case_id}/edit").status_code == 403
    assert client.post(f"/cases/{case_id}/references", data={}).status_code == 403
    assert f"/cases/{case_id}\"" in client.get("/cases").get_data(as_text=True)
