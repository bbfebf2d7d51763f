"""Who may do what on the meeting routes: a matrix of routes × roles."""
from __future__ import annotations

from datetime import timedelta

import pytest

from mdt.auth.models import Role

from .factories import utc

NOW = utc(2026, 11, 2, 2, 0)
M, S, C = "manager", "specialist", "clinician"


def _routes(ids: dict) -> list[tuple[str, str, dict, dict]]:
    """(method, url, form data, expected status per kind of user); order matters (cancel last)."""
    read = {M: 200, S: 200, C: 200}
    manage_get = {M: 200, S: 403, C: 403}
    manage_post = {M: 302, S: 403, C: 403}
    item, meeting = ids["item"], ids["meeting"]
    return [
        ("GET", "/series", {}, manage_get),
        ("GET", "/series/new", {}, manage_get),
        ("GET", f"/series/{ids['series']}/edit", {}, manage_get),
        ("POST", f"/series/{ids['series']}/generate", {}, manage_post),
        ("GET", "/meetings", {}, read),
        ("GET", f"/meetings/{meeting}", {}, read),
        ("GET", f"/meetings/{meeting}/edit", {}, manage_get),
        # Before the cutoff, specialists and referring clinicians may propose cases.
        ("GET", f"/meetings/{meeting}/items/new", {}, read),
        ("GET", f"/cases/{ids['case']}/agenda", {}, {M: 200, S: 200, C: 404}),
        ("GET", f"/items/{item}/edit", {}, manage_get),
        ("POST", f"/items/{item}/move", {"direction": "down"}, manage_post),
        ("POST", f"/items/{item}/triage", {"triage": "standard_of_care"}, manage_post),
        ("POST", f"/items/{ids['other_item']}/status", {"status": "withdrawn"}, manage_post),
        ("POST", f"/items/{item}/carry-over", {}, manage_post),
        ("POST", f"/items/{item}/remove", {}, manage_post),
        ("POST", f"/meetings/{meeting}/attendees", {"core_team": "1"}, manage_post),
        ("POST", f"/attendances/{ids['attendance']}/presence", {"presence": "present"},
         manage_post),
        ("POST", f"/attendances/{ids['attendance']}/response", {"response": "accepted"},
         {M: 403, S: 403, C: 403}),  # only the invitee answers
        ("POST", f"/attendances/{ids['attendance']}/remove", {}, manage_post),
        ("POST", f"/meetings/{meeting}/cancel", {"reason": "Holiday"}, manage_post),
    ]


def _scene(make) -> dict:
    series = make.series()
    meeting = make.meeting(series=series, starts_at=NOW + timedelta(days=3))
    item, other = make.item(meeting=meeting), make.item(meeting=meeting)
    attendance = make.attendance(meeting, make.specialist())
    return {"series": series.id, "meeting": meeting.id, "item": item.id,
            "other_item": other.id, "case": make.case().id, "attendance": attendance.id}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COORDINATOR, Role.SPECIALIST, Role.CLINICIAN])
def test_route_matrix(client, make, login_as, frozen_clock, role):
    frozen_clock(NOW)
    ids = _scene(make)
    login_as(make.user(roles=(role,)))
    kind = {Role.ADMIN: M, Role.COORDINATOR: M, Role.SPECIALIST: S, Role.CLINICIAN: C}[role]
    for method, url, data, expected in _routes(ids):
        response = client.open(url, method=method, data=data)
        assert response.status_code == expected[kind], (method, url, role)


def test_anonymous_is_sent_to_sign_in(client, make, frozen_clock):
    frozen_clock(NOW)
    for method, url, data, _ in _routes(_scene(make)):
        response = client.open(url, method=method, data=data)
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/login"), (method, url)


def test_specialist_cannot_propose_after_cutoff(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    meeting = make.meeting(starts_at=NOW + timedelta(hours=12))
    login_as(make.specialist())
    response = client.get(f"/meetings/{meeting.id}/items/new")
    assert response.status_code == 403 and "cutoff" in response.get_data(as_text=True)


def test_state_changes_refuse_get(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    ids = _scene(make)
    login_as(make.coordinator())
    for url in (f"/items/{ids['item']}/remove", f"/items/{ids['item']}/carry-over",
                f"/meetings/{ids['meeting']}/cancel", f"/attendances/{ids['attendance']}/remove",
                f"/series/{ids['series']}/generate"):
        assert client.get(url).status_code == 405, url
