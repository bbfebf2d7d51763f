"""Opinions: one per person per proposal, changeable until decided, concurrent givers all count."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from mdt.audit.models import AuditEntry
from mdt.decisions import services
from mdt.decisions.models import Opinion, Stance
from mdt.decisions.services import opinions
from mdt.errors import ForbiddenError, ImmutableError, InvalidError
from mdt.extensions import db
from mdt.meetings.models import ItemStatus

from .decisions_scene import build_scene


def _opinions(proposal_id):
    return list(db.session.scalars(select(Opinion).where(Opinion.proposal_id == proposal_id)
                                   .order_by(Opinion.id)))


def _audit(action):
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id)))


def test_specialist_gives_then_changes_an_opinion(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.ortho)
    response = client.post(f"/proposals/{p.id}/opinion",
                           data={f"p{p.id}-stance": "support", f"p{p.id}-comment": "Agree"})
    assert response.status_code == 302
    assert "Your opinion was recorded." in client.get(f"/items/{s.item.id}").get_data(as_text=True)
    client.post(f"/proposals/{p.id}/opinion",
                data={f"p{p.id}-stance": "object", f"p{p.id}-comment": "Cord compression"})
    [opinion] = _opinions(p.id)
    assert (opinion.stance, opinion.comment, opinion.discipline.value) == (
        Stance.OBJECT, "Cord compression", "orthopaedics")
    given, changed = _audit("opinion.given"), _audit("opinion.changed")
    assert [e.data["stance"] for e in given] == [[None, "support"]]
    assert [e.data["stance"] for e in changed] == [["support", "object"]]
    assert given[0].case_id == changed[0].case_id == s.item.case_id


def test_the_form_shows_the_current_opinion(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    make.opinion(p, s.ortho, Stance.ABSTAIN, "Not my field")
    login_as(s.ortho)
    html = client.get(f"/items/{s.item.id}").get_data(as_text=True)
    assert f'<input checked id="p{p.id}-stance-2" name="p{p.id}-stance" required type="radio" value="abstain">' in html  # noqa: E501
    assert "Not my field</textarea>" in html
    assert "Change my opinion" in html


def test_an_objection_needs_a_reason_shown_next_to_the_field(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.ortho)
    response = client.post(f"/proposals/{p.id}/opinion",
                           data={f"p{p.id}-stance": "object", f"p{p.id}-comment": "  "})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<p class="error" id="p{p.id}-comment-err">An objection needs a reason' in html
    assert _opinions(p.id) == []
    with pytest.raises(InvalidError) as exc:
        services.give_opinion(s.ortho, p, stance=Stance.OBJECT, comment=None)
    assert "comment" in exc.value.fields


def test_stance_is_required(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.ortho)
    response = client.post(f"/proposals/{p.id}/opinion", data={f"p{p.id}-comment": "Hmm"})
    assert response.status_code == 400
    assert "Choose support, object or abstain." in response.get_data(as_text=True)


def test_only_specialists_give_opinions(client, make, login_as):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    for user in (s.coordinator, s.referrer, s.admin):
        login_as(user)
        assert client.post(f"/proposals/{p.id}/opinion",
                           data={f"p{p.id}-stance": "support"}).status_code == 403
    with pytest.raises(ForbiddenError):
        services.give_opinion(s.coordinator, p, stance=Stance.SUPPORT, comment=None)


@pytest.mark.parametrize("decide", ["status", "consensus"])
def test_opinions_close_once_the_item_is_decided(client, make, login_as, decide):
    s = build_scene(make, started=True)
    p = make.proposal(item=s.item, author=s.radonc)
    make.opinion(p, s.ortho, Stance.SUPPORT)
    if decide == "status":
        s.item.status = ItemStatus.DISCUSSED
        db.session.commit()
    else:
        services.sign_consensus(s.chair, s.item,
                                services.ConsensusInput(outcome="no_consensus",
                                                        reason="Split team"))
        db.session.commit()
    login_as(s.ortho)
    response = client.post(f"/proposals/{p.id}/opinion",
                           data={f"p{p.id}-stance": "object", f"p{p.id}-comment": "Changed"})
    assert response.status_code == 409
    login_as(s.medonc)
    assert client.post(f"/proposals/{p.id}/opinion",
                       data={f"p{p.id}-stance": "support"}).status_code == 409
    assert [(o.user_id, o.stance) for o in _opinions(p.id)] == [(s.ortho.id, Stance.SUPPORT)]
    with pytest.raises(ImmutableError):
        services.give_opinion(s.medonc, services.get_proposal(p.id), stance=Stance.SUPPORT,
                              comment=None)


def _give_concurrently(app, givers, proposal_id):
    """Each giver in its own thread, app context and DB session, released together."""
    barrier = threading.Barrier(len(givers))
    errors: list[BaseException] = []

    def run(user_id, stance, comment):
        try:
            with app.app_context():
                from mdt.auth.models import User
                user = db.session.get(User, user_id)
                proposal = services.get_proposal(proposal_id)
                barrier.wait(timeout=10)
                services.give_opinion(user, proposal, stance=stance, comment=comment)
                db.session.commit()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=g) for g in givers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


def test_two_people_at_the_same_moment_are_both_counted(make, app):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    _give_concurrently(app, [(s.ortho.id, Stance.SUPPORT, None),
                             (s.medonc.id, Stance.OBJECT, "Cord at risk")], p.id)
    db.session.expire_all()
    assert sorted((o.user_id, o.stance) for o in _opinions(p.id)) == sorted(
        [(s.ortho.id, Stance.SUPPORT), (s.medonc.id, Stance.OBJECT)])
    assert sorted(e.actor_id for e in _audit("opinion.given")) == sorted([s.ortho.id,
                                                                         s.medonc.id])


def test_the_same_person_twice_at_once_ends_with_one_row(make, app):
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    _give_concurrently(app, [(s.ortho.id, Stance.SUPPORT, None),
                             (s.ortho.id, Stance.ABSTAIN, "Second tab")], p.id)
    db.session.expire_all()
    [opinion] = _opinions(p.id)
    assert opinion.stance in (Stance.SUPPORT, Stance.ABSTAIN)
    audits = len(_audit("opinion.given")) + len(_audit("opinion.changed"))
    assert len(_audit("opinion.given")) == 1 and audits == 2


def test_insert_lost_to_another_request_becomes_an_update(make, app, monkeypatch):
    """Deterministic: the row appears between our read and our insert."""
    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    real_find = opinions._find_opinion
    discipline = s.ortho.discipline
    calls = []

    def find_then_race(proposal_id, user_id):
        calls.append(1)
        if len(calls) == 1:  # our read sees nothing; meanwhile the other tab commits
            with app.app_context():
                db.session.add(Opinion(proposal_id=proposal_id, user_id=user_id,
                                       discipline=discipline, stance=Stance.SUPPORT))
                db.session.commit()
            return None
        return real_find(proposal_id, user_id)

    monkeypatch.setattr(opinions, "_find_opinion", find_then_race)
    opinion = services.give_opinion(s.ortho, p, stance=Stance.OBJECT, comment="Second thoughts")
    db.session.commit()
    db.session.expire_all()
    assert [(o.id, o.stance) for o in _opinions(p.id)] == [(opinion.id, Stance.OBJECT)]
    assert [e.data["stance"] for e in _audit("opinion.changed")] == [["support", "object"]]
    assert db.session.scalar(select(func.count()).select_from(Opinion)) == 1


def test_database_refuses_a_second_row_for_the_same_person(make):
    from sqlalchemy.exc import IntegrityError

    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    make.opinion(p, s.ortho, Stance.SUPPORT)
    with pytest.raises(IntegrityError):
        make.opinion(p, s.ortho, Stance.ABSTAIN)
    db.session.rollback()


def test_opinion_form_works_with_csrf_on(app, client, make, login_as):
    import re

    s = build_scene(make)
    p = make.proposal(item=s.item, author=s.radonc)
    login_as(s.ortho)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        html = client.get(f"/items/{s.item.id}").get_data(as_text=True)
        token = re.search(rf'name="p{p.id}-csrf_token" type="hidden" value="([^"]+)"', html)
        assert token is not None
        assert client.post(f"/proposals/{p.id}/opinion",
                           data={f"p{p.id}-stance": "support"}).status_code == 400
        assert _opinions(p.id) == []
        assert client.post(f"/proposals/{p.id}/opinion", data={
            f"p{p.id}-stance": "support", f"p{p.id}-csrf_token": token.group(1)}).status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert [o.stance for o in _opinions(p.id)] == [Stance.SUPPORT]
