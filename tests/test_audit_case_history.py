"""A case's history page: who did what and when, for coordinators and admins only."""
from __future__ import annotations

from sqlalchemy import select

from mdt.cases.models import Case
from mdt.extensions import db

from .factories import utc
from .test_cases_views import REFERRAL


def test_creating_and_editing_a_case_shows_in_its_history(client, make, login_as, frozen_clock):
    referrer = make.clinician(name="Dr Referrer")
    editor = make.specialist(name="Dr Editor")
    frozen_clock(utc(2026, 11, 27, 6, 30))
    login_as(referrer)
    client.post("/cases/new", data={**REFERRAL, "ecog": "1", "submit": "Refer case"})
    case = db.session.scalars(select(Case)).one()
    frozen_clock(utc(2026, 11, 27, 7, 45))
    login_as(editor)
    client.post(f"/cases/{case.id}/edit", data={**REFERRAL, "version": "1", "ecog": "2"})

    login_as(make.coordinator(time_zone="Europe/London"))
    html = client.get(f"/cases/{case.id}/history").get_data(as_text=True)
    updated, created = html.index("case.updated"), html.index("case.created")
    assert updated < created  # newest first
    row_updated = html[html.rindex("<tr>", 0, updated):html.index("</tr>", updated)]
    row_created = html[html.rindex("<tr>", 0, created):html.index("</tr>", created)]
    assert "Dr Editor" in row_updated and "Dr Referrer" in row_created
    assert "07:45 GMT" in row_updated and "2026-11-27 07:45:00 UTC" in row_updated
    assert "Ecog" in row_updated and "1 → 2" in row_updated
    assert "patient.created" in html
    assert "Zhang Min" not in html  # no patient name in the audit trail


def test_history_in_the_app_zone_for_a_viewer_without_one(client, make, login_as, frozen_clock,
                                                          app):
    case = make.case()
    frozen_clock(utc(2026, 11, 27, 6, 30))
    login_as(case.referring_clinician)
    client.post(f"/cases/{case.id}/references", data={
        "kind": "pathology", "accession_number": "P-1", "performed_on": "2026-11-20",
        "description": "Biopsy"})
    login_as(make.admin())
    html = client.get(f"/cases/{case.id}/history").get_data(as_text=True)
    assert "reference.added" in html and "P-1" in html
    zone = app.config["DEFAULT_TIME_ZONE"]
    assert f"Times in\n  {zone} and UTC" in html


def test_clinician_and_specialist_cannot_read_the_history(client, make, login_as):
    case = make.case()
    login_as(case.referring_clinician)
    assert client.get(f"/cases/{case.id}/history").status_code == 403
    login_as(make.specialist())
    assert client.get(f"/cases/{case.id}/history").status_code == 403


def test_case_page_links_to_history_only_for_coordinators_and_admins(client, make, login_as):
    case = make.case()
    link = f'href="/cases/{case.id}/history"'
    login_as(make.coordinator())
    assert link in client.get(f"/cases/{case.id}").get_data(as_text=True)
    login_as(case.referring_clinician)
    assert link not in client.get(f"/cases/{case.id}").get_data(as_text=True)


def test_history_is_paginated_newest_first(client, make, login_as, monkeypatch):
    from mdt.audit import services as audit

    monkeypatch.setattr(audit, "HISTORY_PER_PAGE", 2)
    case = make.case()
    for n in range(3):
        audit.record("case.updated", f"Change {n}", actor=None, case_id=case.id)
    db.session.commit()
    login_as(make.coordinator())
    first = client.get(f"/cases/{case.id}/history").get_data(as_text=True)
    assert "Change 2" in first and "Change 0" not in first and "Page 1 of 2" in first
    second = client.get(f"/cases/{case.id}/history?page=2").get_data(as_text=True)
    assert "Change 0" in second and "Change 2" not in second
