"""Test fixtures: one app per session on SQLite or PostgreSQL, clean tables per test.

Choose the database with ``MDT_TEST_DB=sqlite`` (default) or ``MDT_TEST_DB=postgresql``
(``MDT_TEST_PG_URL`` points at a server where we may create databases; default
``postgresql://postgres@127.0.0.1:5432/test``). ``make test`` runs the suite on both.
The schema is built once per session by the Alembic migrations, never by create_all().
"""
from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.globals import _cv_app
from flask.testing import FlaskClient
from flask_migrate import upgrade

from mdt import append_only, clock, create_app
from mdt.extensions import db

from .factories import Factories

IN_CI = bool(os.environ.get("CI"))
PG_ADMIN_URL = os.environ.get("MDT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def need_server(what: str, detail: str) -> None:
    """Fail in CI, skip elsewhere, when a server a test needs is missing."""
    message = f"{what} is not reachable ({detail}); start it or see README 'Tests'."
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    backend = os.environ.get("MDT_TEST_DB", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
        return
    if backend != "postgresql":
        raise pytest.UsageError(f"MDT_TEST_DB must be sqlite or postgresql, not {backend!r}")
    name = f"mdt_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        need_server("PostgreSQL", f"{PG_ADMIN_URL}: {exc.orig}")
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory) -> Iterator[Flask]:
    instance = tmp_path_factory.mktemp("instance")
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url.replace("postgresql://", "postgresql+psycopg://"),
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "MAIL_BACKEND": "file",
        "MAIL_SINK_DIR": str(instance / "mail"),
        "BROKER_URL": f"sqla+sqlite:///{instance / 'broker.sqlite'}",
        "BASE_URL": "http://mdt.test",
    })
    app.test_client_class = IsolatedClient
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _app_context(app) -> Iterator[None]:
    """Each test runs in an app context; tables are emptied afterwards."""
    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()
        _empty_tables()
    clock.set_now(None)


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                 + " RESTART IDENTITY CASCADE"))
        else:
            # The append-only triggers (mdt/append_only.py) refuse these DELETEs on
            # SQLite; TRUNCATE above fires none on PostgreSQL. Lift them for the
            # teardown only and put them back, so every test runs with them, in one
            # explicit transaction (pysqlite would commit each DDL statement alone).
            conn.exec_driver_sql("BEGIN")
            append_only.remove(conn)
            # RESTRICT is checked row by row in SQLite: break self-references first
            # (agenda items carried from/to each other).
            for table in db.metadata.sorted_tables:
                self_refs = {fk.parent.name: None for fk in table.foreign_keys
                             if fk.column.table is table}
                if self_refs:
                    conn.execute(table.update().values(self_refs))
            for table in tables:
                conn.execute(sa.text(f'DELETE FROM "{table}"'))
            append_only.install(conn)


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context and DB session.

    Flask reuses an app context that is already pushed; the tests push one,
    so without this a request would share the test's session and identity
    map, hiding missing commits and making query counts meaningless.
    """

    def open(self, *args, **kwargs):
        def run():
            _cv_app.set(None)
            return FlaskClient.open(self, *args, **kwargs)

        return contextvars.copy_context().run(run)


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def login_as(app, client):
    """Sign ``user`` in on ``client`` without the cost of Argon2 verification.

    Like ``mdt.auth.sessions.sign_in``: a fresh session, seen now by the app clock.
    """
    from flask_login.utils import _create_identifier

    from mdt.auth.sessions import LAST_SEEN

    def login(user, on: FlaskClient | None = None) -> FlaskClient:
        target = on or client
        with app.test_request_context(environ_base=target.environ_base):
            identifier = _create_identifier()
        with target.session_transaction() as sess:
            sess.clear()
            sess["_user_id"] = user.get_id()
            sess[LAST_SEEN] = clock.now().timestamp()
            sess["_fresh"] = True
            sess["_id"] = identifier
        return target

    return login


@pytest.fixture
def make(app) -> Factories:
    """Callable factories: ``make.user(...)``, ``make.case(...)``…, committed."""
    return Factories()


@pytest.fixture
def frozen_clock():
    """Set the application clock: ``frozen_clock(datetime(..., tzinfo=UTC))``."""

    def set_to(moment):
        clock.set_now(moment)
        return moment

    yield set_to
    clock.set_now(None)


class QueryCounter:
    """Counts the SQL statements the app runs while active (``len(counter)``)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, _conn, _cursor, statement, *_args):
        self.statements.append(statement)

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app):
    """``with count_queries() as q: client.get(...)``; then ``len(q)`` statements ran."""
    return lambda: QueryCounter(db.engine)


@pytest.fixture
def celery_app(app):
    """The worker's Celery app bound to the test's Flask app, for calling task bodies.

    Tests call tasks with ``.apply()``: they run in this process, no broker.
    The real worker path is tested in test_worker_delivery.py.
    """
    from worker.celery_app import celery_init_app

    celery_app = celery_init_app(app)
    yield celery_app
    app.extensions.pop("celery", None)
    celery_app.close()
