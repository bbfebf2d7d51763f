"""Helpers shared by the HTML views and templates: time display, form errors."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, Response, current_app, flash, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mdt import clock, timezones
from mdt.errors import DomainError


def to_zone(moment: datetime | None, zone: str | None = None) -> datetime | None:
    """Convert an aware UTC datetime to ``zone`` (default: the app's zone)."""
    if moment is None:
        return None
    return timezones.to_local(moment, zone)


def format_datetime(moment: datetime | None, zone: str | None = None,
                    fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """Format an aware datetime in ``zone`` with the zone's abbreviation."""
    local = to_zone(moment, zone)
    if local is None:
        return "—"
    return f"{local.strftime(fmt)} {local.tzname()}"


def external_url(endpoint: str, **values: Any) -> str:
    """Return the address people use for ``endpoint`` (``MDT_BASE_URL``), for e-mails and calendars.

    ``url_for(..., _external=True)`` with the URL adapter Flask binds to
    ``SERVER_NAME``/``PREFERRED_URL_SCHEME``/``APPLICATION_ROOT`` (set from the
    base URL in ``mdt.config``), also inside a request: a link sent to someone
    must not depend on the host name the sender's browser happened to use.
    """
    adapter = current_app.create_url_adapter(None)
    if adapter is None:  # no SERVER_NAME: only possible if a test removed it
        return url_for(endpoint, _external=True, **values)
    return adapter.build(endpoint, values, force_external=True)


def format_date(value: date | datetime | None, fmt: str = "%d %b %Y") -> str:
    """Format a date (no zone conversion: dates are calendar days), or a dash."""
    return value.strftime(fmt) if value else "—"


def apply_field_errors(form: FlaskForm, exc: DomainError) -> None:
    """Show a domain error next to the fields it names, or as a flash message."""
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + [message]
            placed = True
    if not placed:
        flash(exc.message, "error")


def nav_links() -> list[tuple[str, str]]:
    """Return the (endpoint, label) links of the main menu the signed-in person may use."""
    from mdt.auth.models import Role
    from mdt.auth.permissions import can_coordinate

    links = [("meetings.index", "Meetings"), ("cases.index", "Cases")]
    if current_user.is_authenticated and current_user.has_role(Role.ADMIN):
        links.append(("admin.users", "Users"))
    if can_coordinate(current_user):
        links.append(("delivery.index", "Delivery"))
    return links


def may_show_patient_data() -> bool:
    """Return True unless this response is a static file: the one rule for ``no-store``.

    Every page, redirect, error and calendar feed may name a patient or
    depend on who is signed in, so none of them is kept by a browser or proxy
    cache (the back button after sign-out shows nothing). Static files (CSS,
    icons) keep the caching Flask gives them.
    """
    return request.endpoint != "static"


def register_web_helpers(app: Flask) -> None:
    """Register template filters and globals."""
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
    app.add_template_global(clock.now, "now")
    app.add_template_global(nav_links)

    @app.after_request
    def security_headers(response: Response) -> Response:
        if may_show_patient_data():
            response.headers["Cache-Control"] = "no-store"
        if current_app.config["HSTS"]:
            response.headers.setdefault(
                "Strict-Transport-Security", f"max-age={current_app.config['HSTS_MAX_AGE']}")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response
