"""Migration 0005delivery_retry_leases on a database holding rows, up and down, on both databases.

A scratch database (a SQLite file, or a PostgreSQL database of its own on the
PostgreSQL pass) is migrated to the revision before, given notification rows
as the old code left them, then upgraded, downgraded and upgraded again.
"""
from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from mdt import create_app
from mdt.db import UTCDateTime

from .conftest import PG_ADMIN_URL

BEFORE = "0004_notification_prefs"
REVISION = "0005delivery_retry_leases"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

users = sa.table("users", *(sa.column(c) for c in (
    "id", "email", "name", "discipline", "password_hash", "is_active")),
    sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()))
notifications = sa.table("notifications", *(sa.column(c) for c in (
    "id", "kind", "recipient_id", "dedup_key", "status", "attempts", "send_email")),
    sa.column("payload", sa.JSON()), *(sa.column(c, UTCDateTime()) for c in (
        "due_at", "claimed_at", "created_at", "updated_at")))


@pytest.fixture
def scratch_url(tmp_path):
    if os.environ.get("MDT_TEST_DB", "sqlite") != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite'}"
        return
    name = f"mdt_migrate_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") \
        + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_upgrade_keeps_rows_and_gives_them_their_times(scratch_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": scratch_url})
    from mdt.extensions import db

    with app.app_context():
        upgrade(revision=BEFORE)
        stamp = {"created_at": NOW, "updated_at": NOW}
        with db.engine.begin() as conn:
            conn.execute(users.insert().values(id=1, email="a@example.org", name="A",
                                               discipline="other", password_hash="x",
                                               is_active=True, **stamp))
            row = dict(kind="action_due", recipient_id=1, attempts=1, send_email=True,
                       payload={}, **stamp)
            conn.execute(notifications.insert(), [
                dict(row, id=1, dedup_key="a", status="pending", due_at=NOW, claimed_at=None),
                dict(row, id=2, dedup_key="b", status="sending", due_at=NOW - timedelta(hours=1),
                     claimed_at=NOW - timedelta(minutes=2))])
        upgrade(revision=REVISION)
        table = sa.Table("notifications", sa.MetaData(), autoload_with=db.engine)
        assert not table.c.next_attempt_at.nullable
        got = _times(db.engine)
        assert got == {1: (NOW, None, None),
                       # A claim of the old code keeps its 10 minutes.
                       2: (NOW - timedelta(hours=1), NOW + timedelta(minutes=8), None)}
        indexes = {ix["name"] for ix in sa.inspect(db.engine).get_indexes("notifications")}
        assert "ix_notifications_pending_next_attempt" in indexes
        downgrade(revision=BEFORE)
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("notifications")}
        assert not columns & {"next_attempt_at", "lease_expires_at", "failing_since"}
        upgrade(revision=REVISION)
        assert set(_times(db.engine)) == {1, 2}
        db.engine.dispose()


def _times(engine) -> dict[int, tuple]:
    table = sa.table("notifications", sa.column("id"),
                     *(sa.column(c, UTCDateTime()) for c in (
                         "next_attempt_at", "lease_expires_at", "failing_since")))
    with engine.connect() as conn:
        return {r.id: (r.next_attempt_at, r.lease_expires_at, r.failing_since)
                for r in conn.execute(sa.select(table).order_by(table.c.id))}
