"""Configuration, read from ``MDT_``-prefixed environment variables.

Every setting has a development default so that ``make run`` works on a bare
machine (SQLite database and SQLite-backed Celery broker in ``instance/``).
Production sets at least ``MDT_ENV=production``, ``MDT_SECRET_KEY``,
``MDT_DATABASE_URL`` (PostgreSQL) and ``MDT_BROKER_URL`` (Redis).
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"


class ConfigError(RuntimeError):
    """The configuration cannot be used to start the application."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: str, environ: dict[str, str] | None = None) -> dict:
    """Build the Flask configuration from the environment."""
    env = os.environ if environ is None else environ
    instance = Path(instance_path)
    get = lambda name, default=None: env.get(f"MDT_{name}", default)  # noqa: E731
    mdt_env = get("ENV", "development")
    database_url = get("DATABASE_URL", f"sqlite:///{instance / 'mdt.sqlite'}")
    return {
        "MDT_ENV": mdt_env,
        "SECRET_KEY": get("SECRET_KEY", DEFAULT_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BROKER_URL": get("BROKER_URL", f"sqla+sqlite:///{instance / 'broker.sqlite'}"),
        # Seconds a task may stay unacknowledged before Redis redelivers it.
        # Every retry delay in worker/ stays well under this (see docs).
        "BROKER_VISIBILITY_TIMEOUT": int(get("BROKER_VISIBILITY_TIMEOUT", "3600")),
        # Celery queue the deliver and dispatch tasks go to (tests use their own).
        "BROKER_QUEUE": get("BROKER_QUEUE", "mdt"),
        # Delivery retries on SMTP/connection errors: first delay, doubled each
        # time, capped; every delay stays far below the visibility timeout.
        "NOTIFY_MAX_RETRIES": int(get("NOTIFY_MAX_RETRIES", "5")),
        "NOTIFY_RETRY_DELAY": float(get("NOTIFY_RETRY_DELAY", "10")),
        "NOTIFY_RETRY_MAX_DELAY": float(get("NOTIFY_RETRY_MAX_DELAY", "300")),
        # Rows per deliver task: the worker shares the meeting, agenda and SMTP
        # connection between them, but claims and sends each row on its own.
        "NOTIFY_DELIVER_BATCH": int(get("NOTIFY_DELIVER_BATCH", "20")),
        "DEFAULT_TIME_ZONE": get("DEFAULT_TIME_ZONE", "Asia/Shanghai"),
        "BASE_URL": get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "MAIL_BACKEND": get("MAIL_BACKEND", "file" if mdt_env != "production" else "smtp"),
        "MAIL_SINK_DIR": get("MAIL_SINK_DIR", str(instance / "mail")),
        "MAIL_SERVER": get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool(get("MAIL_USE_TLS"), False),
        "MAIL_USERNAME": get("MAIL_USERNAME"),
        "MAIL_PASSWORD": get("MAIL_PASSWORD"),
        "MAIL_SENDER": get("MAIL_SENDER", "MDT <mdt@localhost>"),
        "MAIL_TIMEOUT": float(get("MAIL_TIMEOUT", "10")),
        # Patient detail in e-mails: "initials" (initials and the last 3
        # characters of the hospital number) or "none" (case number only).
        "EMAIL_PATIENT_DETAIL": get("EMAIL_PATIENT_DETAIL", "initials"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": mdt_env == "production",
        "REMEMBER_COOKIE_SECURE": mdt_env == "production",
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _normalise_db_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def check_config(config: dict) -> None:
    """Refuse to run outside development or testing with unsafe settings."""
    if config.get("TESTING") or config["MDT_ENV"] in {"development", "test"}:
        return
    if config["SECRET_KEY"] in (None, "", DEFAULT_SECRET_KEY):
        raise ConfigError(
            "MDT_SECRET_KEY must be set to a long random value outside development "
            "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
