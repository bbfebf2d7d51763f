"""Routes × roles on the demo data: who may open what, and GET never changes state.

Every GET route of the app must appear in EXPECTED (a new route fails the
test until someone decides who may see it). The personas are the demo
people: the chair (medonc) is also a clinician; ``clinician`` referred the
case under test; ``nurse`` is a clinician with no link to it.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from mdt.auth.models import User
from mdt.cases.models import Case, Patient
from mdt.decisions.models import Consensus, Modality, Proposal
from mdt.demo import data
from mdt.extensions import db
from mdt.meetings.models import Attendance

PERSONAS = ["anon", "admin", "coordinator", "medonc", "ortho", "radonc", "clinician", "nurse"]
OK, LOGIN, FORBIDDEN, HIDDEN, CONFLICT, AWAY = 200, 302, 403, 404, 409, 302

#                                  anon   admin      coord      chair      ortho      radonc(author) referrer  other clinician
EXPECTED = {
    "home.index":                   [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    "auth.login":                   [OK,    AWAY,      AWAY,      AWAY,      AWAY,      AWAY,      AWAY,      AWAY],
    "admin.users":                  [LOGIN, OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "admin.new_user":               [LOGIN, OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "admin.edit_user":              [LOGIN, OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "delivery.index":      [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "audit.case_history":           [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "cases.index":                  [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    "cases.new":                    [LOGIN, FORBIDDEN, OK,        OK,        OK,        OK,        OK,        OK],
    "cases.detail":                 [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        HIDDEN],
    "cases.edit":                   [LOGIN, FORBIDDEN, OK,        OK,        OK,        OK,        OK,        HIDDEN],
    "decisions.item":               [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        HIDDEN],
    "decisions.report":             [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        HIDDEN],
    # The item under test is decided: its consensus is signed, proposals are closed.
    "decisions.consensus":          [LOGIN, FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "decisions.amend":              [LOGIN, FORBIDDEN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN],
    "decisions.new_proposal":       [LOGIN, FORBIDDEN, FORBIDDEN, CONFLICT,  CONFLICT,  CONFLICT,  FORBIDDEN, FORBIDDEN],
    "decisions.edit_proposal":      [LOGIN, FORBIDDEN, CONFLICT,  FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN, FORBIDDEN],
    "meetings.index":               [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    "meetings.detail":              [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    "meetings.series_list":         [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.new_series":          [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.edit_series":         [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.edit_meeting":        [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.new_item":            [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.edit_item":           [LOGIN, OK,        OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN],
    "meetings.add_case_to_meeting": [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        HIDDEN],
    "notifications.index":          [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    "notifications.preferences":    [LOGIN, OK,        OK,        OK,        OK,        OK,        OK,        OK],
    # An unknown calendar token is simply not there, for everyone.
    "notifications.feed":           [HIDDEN, HIDDEN,   HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN],
}


def _fingerprint() -> dict[str, tuple]:
    """Row count and newest update per table: any write by a GET changes it."""
    out = {}
    for table in db.metadata.sorted_tables:
        cols = [sa.func.count()]
        if "updated_at" in table.c:
            cols.append(sa.func.max(table.c.updated_at))
        out[table.name] = tuple(db.session.execute(sa.select(*cols).select_from(table)).one())
    return out


@pytest.fixture
def demo(app):
    data.load()
    case = db.session.scalars(select(Case).join(Patient)
                              .where(Patient.hospital_number == "DEMO-100231")).one()
    consensus = db.session.scalars(select(Consensus)).one()
    item = consensus.agenda_item
    assert item.case_id == case.id
    proposal = db.session.scalars(select(Proposal).where(Proposal.agenda_item_id == item.id,
                                                         Proposal.modality == Modality.SBRT)).one()
    return dict(case_id=case.id, item_id=item.id, consensus_id=consensus.id,
                proposal_id=proposal.id, meeting_id=item.meeting_id,
                series_id=item.meeting.series_id, user_id=case.referring_clinician_id,
                attendance_id=db.session.scalars(select(Attendance.id)).first(),
                token="not-a-real-token", notification_id=1, reference_id=1)


def _client_for(app, login_as, persona):
    client = app.test_client()
    if persona != "anon":
        user = db.session.scalars(select(User).where(User.email == f"{persona}@demo.mdt")).one()
        login_as(user, on=client)
    return client


def test_every_get_route_is_in_the_matrix(app):
    routes = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods} - {"static"}
    assert routes == set(EXPECTED)


def test_get_routes_answer_each_role_as_expected_and_change_nothing(app, login_as, demo):
    before = _fingerprint()
    seen, wanted = {}, {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        url = rule.build({k: demo[k] for k in rule.arguments})[1]
        for persona, expected in zip(PERSONAS, EXPECTED[rule.endpoint], strict=True):
            response = _client_for(app, login_as, persona).get(url)
            seen[(rule.endpoint, persona)] = response.status_code
            wanted[(rule.endpoint, persona)] = expected
            if response.status_code == 302 and persona == "anon":
                assert "/login" in response.headers["Location"]
            assert "Traceback" not in response.get_data(as_text=True)
    mismatches = {k: (seen[k], wanted[k]) for k in seen if seen[k] != wanted[k]}
    assert mismatches == {}
    db.session.expire_all()
    assert _fingerprint() == before


POST_ONLY_FOR_COORDINATORS = [
    "meetings.invite", "meetings.cancel_meeting", "meetings.generate", "meetings.item_status",
    "meetings.carry_over", "meetings.move_item", "meetings.remove_item", "meetings.triage",
    "meetings.remove_attendee",
]


@pytest.mark.parametrize("persona", ["ortho", "clinician", "nurse"])
def test_coordinator_actions_are_refused_to_others_without_change(app, login_as, demo, persona):
    before = _fingerprint()
    client = _client_for(app, login_as, persona)
    for endpoint in POST_ONLY_FOR_COORDINATORS:
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        url = rule.build({k: demo[k] for k in rule.arguments})[1]
        response = client.post(url, data={"status": "withdrawn", "reason": "x", "user_id": demo["user_id"],
                                          "direction": "up", "triage": "for_discussion"})
        assert response.status_code in (403, 404), (endpoint, response.status_code)
    db.session.expire_all()
    assert _fingerprint() == before


def test_anonymous_posts_go_to_sign_in_and_change_nothing(app, demo):
    before = _fingerprint()
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in ("auth.login",):
            continue
        url = rule.build({k: demo[k] for k in rule.arguments})[1]
        response = client.post(url, data={})
        assert response.status_code == 302 and "/login" in response.headers["Location"], rule.endpoint
    db.session.expire_all()
    assert _fingerprint() == before


def test_demo_data_loads_once_with_every_role_and_a_signed_consensus(app):
    assert data.load() is True
    assert data.load() is False
    roles = {r for u in db.session.scalars(select(User)) for r in u.roles}
    assert {r.value for r in roles} == {"admin", "coordinator", "specialist", "clinician"}
    consensus = db.session.scalars(select(Consensus)).one()
    assert consensus.was_quorate is True
    assert consensus.agenda_item.meeting.starts_at < consensus.signed_at
    carried = [i for i in consensus.agenda_item.meeting.items if i.carried_to_id is not None]
    assert len(carried) == 1
    assert "demo-password-1" in data.sign_in_help()
