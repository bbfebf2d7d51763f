"""Domain errors raised by services, and how the web layer shows them.

Services raise these; views let them propagate. HTML requests get a page (or
a flash message and redirect where the view chooses), JSON requests get
``{"error": {"code": ..., "message": ..., "fields": {...}}}``. A 500 rolls the
session back and never shows a stack trace.
"""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    """Base class: a rule of the domain refused the operation."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidError(DomainError):
    """The input breaks a rule (bad value, wrong state)."""


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"


class ForbiddenError(DomainError):
    status_code = 403
    code = "forbidden"


class ConflictError(DomainError):
    """Someone else changed the record since it was read (stale version)."""

    status_code = 409
    code = "conflict"


class ThrottledError(DomainError):
    """Too many attempts in a short time; try again later."""

    status_code = 429
    code = "throttled"


class ImmutableError(DomainError):
    """A signed clinical record cannot be changed; amend it instead."""

    status_code = 409
    code = "immutable"


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def _render(status: int, title: str, message: str):
    if _wants_json():
        code = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                409: "conflict", 500: "server_error"}.get(status, "error")
        return jsonify(error={"code": code, "message": message}), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def register_error_handlers(app: Flask) -> None:
    """Turn domain and HTTP errors into friendly pages or JSON errors."""
    from mdt.extensions import db

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        if _wants_json():
            body: dict[str, object] = {"code": exc.code, "message": exc.message}
            if exc.fields:
                body["fields"] = exc.fields
            return jsonify(error=body), exc.status_code
        return _render(exc.status_code, "That did not work", exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            400: ("The request could not be understood. If you submitted a form, reload the "
                  "page and try again."),
            403: "You do not have permission to do that.",
            404: "There is nothing here.",
            405: "That action is not allowed here.",
        }
        status = exc.code or 500
        return _render(status, exc.name, messages.get(status, exc.description or exc.name))

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error on %s %s", request.method, request.endpoint)
        return _render(500, "Something went wrong",
                       "An unexpected error occurred. Nothing was saved from this action; "
                       "please try again.")
