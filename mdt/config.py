"""Configuration: typed defaults, overridden by ``MDT_``-prefixed environment variables.

``configure(app)`` loads ``DEFAULTS`` and then ``app.config.from_prefixed_env("MDT")``
(``MDT_MAIL_PORT=2525`` sets ``MAIL_PORT``), and turns each value into the
type of its default, so a setting is never a string where a number is meant.
Every setting has a development default so that ``make run`` works on a bare
machine (SQLite database and SQLite-backed Celery broker in ``instance/``).
Production sets at least ``MDT_ENV=production``, ``MDT_SECRET_KEY``,
``MDT_DATABASE_URL`` (PostgreSQL) and ``MDT_BROKER_URL`` (Redis).
The README's configuration table lists them all.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Config, Flask

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"

#: The values ``MDT_ENV`` may take; anything else refuses to start.
ENVIRONMENTS = ("development", "test", "production")

#: A production ``MDT_SECRET_KEY`` has at least this many bytes.
MIN_SECRET_KEY_BYTES = 32

#: Settings whose default depends on the instance folder or the environment
#: (``None`` here; filled in by ``_derived_defaults`` when not set).
_DERIVED = ("DATABASE_URL", "BROKER_URL", "MAIL_BACKEND", "MAIL_SINK_DIR", "HSTS")
#: The type of the derived settings that are not text.
_DERIVED_TYPES: dict[str, type] = {"HSTS": bool}

#: Whole-number settings and the range each must lie in (``check_config``).
_RANGES = {
    "REMEMBER_DAYS": (0, 365),
    "IDLE_TIMEOUT_MINUTES": (1, 24 * 60),
    "PATIENT_LOOKUP_LIMIT": (1, 10_000),
    "PATIENT_LOOKUP_WINDOW_MINUTES": (1, 24 * 60),
    "HSTS_MAX_AGE": (0, 2 * 365 * 24 * 3600),
}

#: Every setting an operator may change, with its default and thereby its type.
DEFAULTS: dict[str, Any] = {
    # "development", "test" or "production" (secure cookies, SMTP, a real secret).
    "ENV": "development",
    "SECRET_KEY": DEFAULT_SECRET_KEY,
    "DATABASE_URL": None,
    "BROKER_URL": None,
    # Seconds a task may stay unacknowledged before Redis redelivers it.
    # Every retry delay in worker/ stays well under this (see docs).
    "BROKER_VISIBILITY_TIMEOUT": 3600,
    # Celery queue the deliver and dispatch tasks go to (tests use their own).
    "BROKER_QUEUE": "mdt",
    # Delivery retries on SMTP/connection errors (held in the database, not
    # in countdowns): first delay, doubled each time, capped; given up this
    # many seconds after the first failed attempt (mdt/delivery/retry.py).
    "NOTIFY_RETRY_DELAY": 10.0,
    "NOTIFY_RETRY_MAX_DELAY": 300.0,
    "NOTIFY_RETRY_HORIZON": 86400.0,
    # Rows per deliver task: the worker shares the meeting, agenda and SMTP
    # connection between them, but claims and sends each row on its own.
    "NOTIFY_DELIVER_BATCH": 20,
    "DEFAULT_TIME_ZONE": "Asia/Shanghai",
    # The address people use: links in e-mails and calendars, calendar UIDs.
    "BASE_URL": "http://127.0.0.1:5000",
    "MAIL_BACKEND": None,
    "MAIL_SINK_DIR": None,
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USERNAME": "",
    "MAIL_PASSWORD": "",
    "MAIL_SENDER": "MDT <mdt@localhost>",
    "MAIL_TIMEOUT": 10.0,
    # Patient detail in e-mails: "initials" (initials and the last 3
    # characters of the hospital number) or "none" (case number only).
    "EMAIL_PATIENT_DETAIL": "initials",
    # "Keep me signed in on this device": days a remember-me cookie works
    # (checked by the server, not only by the browser); 0 does not offer it.
    "REMEMBER_DAYS": 14,
    # A session with no request for this long is signed out (ASVS L3: health data).
    "IDLE_TIMEOUT_MINUTES": 30,
    # Hospital-number look-ups on the referral form per person per window.
    "PATIENT_LOOKUP_LIMIT": 60,
    "PATIENT_LOOKUP_WINDOW_MINUTES": 60,
    # Strict-Transport-Security: on in production unless a proxy in front sets it.
    "HSTS": None,
    "HSTS_MAX_AGE": 31_536_000,
    # Development and test only (refused in production): move this process's
    # clock, e.g. to let a worker send tomorrow's reminders (mdt/clock.py).
    "CLOCK_OFFSET_SECONDS": 0.0,
    "CLOCK_AT": "",
    "CLOCK_FILE": "",
}


class ConfigError(RuntimeError):
    """The configuration cannot be used to start the application."""


def configure(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config``: defaults, then ``MDT_*`` variables, then ``overrides`` (tests)."""
    config = app.config
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("MDT", loads=_loads)
    _coerce(config)
    _check_env(config["ENV"])
    _derived_defaults(config, Path(app.instance_path))
    config.update(_fixed_settings(config))
    overrides = dict(overrides or {})
    config.update(overrides)
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    for name, value in url_settings(config["BASE_URL"]).items():
        if name not in overrides:
            config[name] = value


def _loads(value: str) -> Any:
    """Parse a variable as JSON when it is JSON (numbers, true/false), else keep the text."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _coerce(config: Config) -> None:
    """Turn every setting into the type of its default; refuse what cannot be."""
    for name, default in DEFAULTS.items():
        value = config.get(name)
        kind = type(default) if default is not None else _DERIVED_TYPES.get(name)
        if value is None or kind is None:
            continue
        try:
            config[name] = _as(kind, value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"MDT_{name} must be {kind.__name__}, "
                              f"not {value!r}.") from exc


def _as(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in {"1", "true", "yes", "on", "0", "false", "no", "off", ""}:
            raise ValueError(value)
        return text in {"1", "true", "yes", "on"}
    if kind is str:
        return str(value)
    return kind(value)


def _derived_defaults(config: Config, instance: Path) -> None:
    production = config["ENV"] == "production"
    fallback = {
        "DATABASE_URL": f"sqlite:///{instance / 'mdt.sqlite'}",
        "BROKER_URL": f"sqla+sqlite:///{instance / 'broker.sqlite'}",
        "MAIL_BACKEND": "smtp" if production else "file",
        "MAIL_SINK_DIR": str(instance / "mail"),
        "HSTS": production,
    }
    for name in _DERIVED:
        if config.get(name) is None or config.get(name) == "":
            config[name] = fallback[name]


def _fixed_settings(config: Config) -> dict[str, Any]:
    """Flask and extension settings that follow from the ones above."""
    production = config["ENV"] == "production"
    return {
        "MDT_ENV": config["ENV"],
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(config["DATABASE_URL"]),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAIL_USERNAME": config["MAIL_USERNAME"] or None,
        "MAIL_PASSWORD": config["MAIL_PASSWORD"] or None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": timedelta(days=config["REMEMBER_DAYS"]),
        "WTF_CSRF_TIME_LIMIT": None,
    }


def url_settings(base_url: str) -> dict[str, str]:
    """``SERVER_NAME``, ``PREFERRED_URL_SCHEME`` and ``APPLICATION_ROOT`` from the base URL.

    With them, ``url_for(..., _external=True)`` builds the address people use
    even where there is no request (the worker's e-mails and calendars).
    Flask 3.1 does not refuse requests for other host names because of them.
    """
    parts = urlsplit(base_url.rstrip("/"))
    return {"SERVER_NAME": parts.netloc, "PREFERRED_URL_SCHEME": parts.scheme or "http",
            "APPLICATION_ROOT": parts.path or "/"}


def _normalise_db_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _check_env(env: str) -> None:
    """Refuse an ``MDT_ENV`` that is not one of ``ENVIRONMENTS`` (``Production`` is not)."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"MDT_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")


def _check_ranges(config: Config) -> None:
    for name, (low, high) in _RANGES.items():
        if not low <= config[name] <= high:
            raise ConfigError(f"MDT_{name} must be between {low} and {high}, "
                              f"not {config[name]!r}.")


def check_config(config: Config) -> None:
    """Refuse settings that cannot be meant, and unsafe ones outside development and tests."""
    _check_env(config["MDT_ENV"])
    _check_ranges(config)
    if config.get("TESTING") or config["MDT_ENV"] in {"development", "test"}:
        return
    secret = config["SECRET_KEY"]
    if secret in (None, "", DEFAULT_SECRET_KEY):
        raise ConfigError(
            "MDT_SECRET_KEY must be set to a long random value outside development "
            "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    if len(str(secret).encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"MDT_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production, "
            f"not {len(str(secret).encode())} (for example: python -c 'import secrets; "
            "print(secrets.token_hex(32))')."
        )


def check_clock(config: Config) -> None:
    """Refuse a moved clock in production; refuse a clock setting that cannot be read."""
    from mdt import clock

    if not clock.configured(config):
        return
    if config["MDT_ENV"] == "production":
        raise ConfigError(f"{', '.join(clock.SETTINGS)} move the clock for development and "
                          "tests only; unset them in production.")
    try:
        clock.configure(config)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"The clock settings ({', '.join(clock.SETTINGS)}) cannot be used: "
                          f"{exc}") from exc
