"""Who may use each decisions route: a matrix of routes × roles, checked on the server."""
from __future__ import annotations

import pytest

from mdt.decisions import services
from mdt.decisions.models import Outcome
from mdt.extensions import db

from .decisions_scene import build_scene

ROLES = ["admin", "coordinator", "specialist", "chair", "referrer", "other_clinician", "anonymous"]

# (method, route, data, expected status per role in ROLES order). Routes that change
# state come after the reads, and the one that decides the item comes last.
MATRIX = [
    ("GET", "/items/{item}", None, [200, 200, 200, 200, 200, 404, 302]),
    ("GET", "/cases/{case}/report", None, [200, 200, 200, 200, 200, 404, 302]),
    ("GET", "/items/{item}/proposals/new", None, [403, 403, 200, 200, 403, 403, 302]),
    ("POST", "/items/{item}/proposals/new", {"modality": "sbrt"},
     [403, 403, 302, 302, 403, 403, 302]),
    ("GET", "/proposals/{proposal}/edit", None, [403, 200, 403, 403, 403, 403, 302]),
    ("POST", "/proposals/{proposal}/edit", {"modality": "surgery", "version": "1"},
     [403, 302, 403, 403, 403, 403, 302]),
    ("POST", "/proposals/{proposal}/opinion", {"p{proposal}-stance": "support"},
     [403, 403, 302, 302, 403, 403, 302]),
    ("GET", "/consensus/{consensus}/amend", None, [403, 200, 403, 200, 403, 404, 302]),
    ("POST", "/consensus/{consensus}/amend", {"reason": "r", "correction": "c"},
     [403, 302, 403, 302, 403, 404, 302]),
    ("GET", "/items/{item}/consensus", None, [403, 403, 403, 200, 403, 404, 302]),
    ("POST", "/proposals/{proposal}/withdraw", {}, [403, 302, 403, 403, 403, 403, 302]),
    ("POST", "/items/{item}/consensus",
     {"outcome": "no_consensus", "reason": "Split", "confirm": "y"},
     [403, 403, 403, 302, 403, 404, 302]),
]


def _setup(make):
    s = build_scene(make, started=True)
    proposal = make.proposal(item=s.item, author=s.radonc)
    signed_item = make.item(meeting=s.meeting, case=make.case(referrer=s.referrer))
    consensus = services.sign_consensus(s.chair, signed_item,
                                        services.ConsensusInput(outcome=Outcome.DEFERRED,
                                                                reason="Awaiting MRI"))
    db.session.commit()
    ids = {"item": s.item.id, "case": s.item.case_id, "proposal": proposal.id,
           "consensus": consensus.id}
    users = {"admin": s.admin, "coordinator": s.coordinator, "specialist": s.ortho,
             "chair": s.chair, "referrer": s.referrer, "other_clinician": s.other_clinician,
             "anonymous": None}
    return ids, users


@pytest.mark.parametrize("role", ROLES)
def test_route_role_matrix(client, make, login_as, role):
    ids, users = _setup(make)
    if users[role] is not None:
        login_as(users[role])
    got, want = [], []
    for method, route, data, expected in MATRIX:
        url = route.format(**ids)
        body = {k.format(**ids): v for k, v in (data or {}).items()}
        response = client.open(url, method=method, data=body)
        got.append((method, url, response.status_code))
        want.append((method, url, expected[ROLES.index(role)]))
    assert got == want


def test_anonymous_is_sent_to_sign_in(client, make):
    ids, _ = _setup(make)
    response = client.get(f"/items/{ids['item']}")
    assert "/login" in response.headers["Location"]


def test_state_changing_routes_refuse_get(client, make, login_as):
    ids, users = _setup(make)
    login_as(users["chair"])
    for url in (f"/proposals/{ids['proposal']}/opinion", f"/proposals/{ids['proposal']}/withdraw"):
        assert client.get(url).status_code == 405


def test_unknown_ids_are_404(client, make, login_as):
    _, users = _setup(make)
    login_as(users["coordinator"])
    for url in ("/items/999999", "/proposals/999999/edit", "/consensus/999999/amend",
                "/cases/999999/report"):
        assert client.get(url).status_code == 404, url
