"""Response headers: nothing that may show patient data is cached; HSTS when configured."""
from __future__ import annotations

import pytest

from mdt.extensions import db
from mdt.notifications import services as notifications


def test_pages_with_patient_data_are_never_stored(app, client, make, login_as):
    case = make.case()
    reader = make.specialist()
    token = notifications.regenerate_feed_token(reader)
    db.session.commit()
    login_as(reader)
    for url in (f"/cases/{case.id}", f"/cases/{case.id}/report", "/cases", "/", "/meetings",
                f"/calendar/{token}.ics", "/cases/999999"):
        response = client.get(url)
        assert response.headers["Cache-Control"] == "no-store", url
    anonymous = app.test_client()
    for url in ("/login", f"/cases/{case.id}"):  # the form and the redirect to it, too
        assert anonymous.get(url).headers["Cache-Control"] == "no-store", url


def test_static_files_keep_their_caching(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers.get("ETag")
    response.close()


def test_hsts_is_sent_only_when_configured(app, client, monkeypatch):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    monkeypatch.setitem(app.config, "HSTS", True)
    monkeypatch.setitem(app.config, "HSTS_MAX_AGE", 600)
    assert client.get("/login").headers["Strict-Transport-Security"] == "max-age=600"
    static = client.get("/static/css/app.css")
    assert static.headers["Strict-Transport-Security"] == "max-age=600"
    static.close()


@pytest.mark.parametrize("environ, expected", [
    ({}, False),
    ({"MDT_ENV": "production"}, True),
    ({"MDT_ENV": "production", "MDT_HSTS": "off"}, False),
    ({"MDT_HSTS": "true"}, True),
])
def test_hsts_is_on_in_production_unless_turned_off(monkeypatch, tmp_path, environ, expected):
    from .test_config import configured

    app = configured(monkeypatch, tmp_path, **environ)
    assert app.config["HSTS"] is expected
    assert app.config["HSTS_MAX_AGE"] == 31_536_000
