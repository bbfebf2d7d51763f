"""Rows the database itself refuses to change: triggers on SQLite and PostgreSQL.

The services refuse these changes, and the session guard
(``mdt/decisions/guards.py``) refuses them on every ORM path; the triggers
refuse them for everything else that reaches the database: a
``session.execute(text(...))``, a DB-API cursor, a ``psql`` session as the
application's user. Each guarded table gets two triggers,
``<table>_no_update`` and ``<table>_no_delete``, that fail the statement with
the guard's message; INSERT stays allowed (a consensus, its actions and
adopted proposals are written at signing, amendments and audit entries are
appended).

Migration ``0005signed_signed_records`` installs them with ``install``. A
later migration that rebuilds one of these tables in SQLite batch mode (copy,
drop, rename) drops its triggers with it and must call ``install`` again;
``tests/test_migrations.py`` fails if one is missing. The SQL here is what the
migrations install: change it only together with a migration that re-installs.
PostgreSQL fires no row trigger on ``TRUNCATE``: the application never
truncates, and the production database role should not be granted it.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

SIGNED = "signed consensus records cannot change"


@dataclass(frozen=True)
class Guard:
    """One table whose rows may be inserted but never updated or deleted."""

    table: str
    message: str
    #: SQL on ``OLD``: the row is refused only while this holds (None: always).
    only_if: str | None = None


GUARDS = (
    Guard("consensuses", SIGNED),
    Guard("consensus_actions", SIGNED),
    Guard("consensus_proposals", SIGNED),
    Guard("proposals", "a proposal adopted in a signed consensus cannot change",
          only_if="EXISTS (SELECT 1 FROM consensus_proposals WHERE proposal_id = OLD.id)"),
    Guard("amendments", "amendments are append-only: add another amendment"),
    Guard("audit_entries", "audit entries are append-only"),
    Guard("meeting_corrections", "meeting corrections are append-only"),
)
EVENTS = ("update", "delete")


def trigger_names() -> set[str]:
    """Return the names of every trigger ``install`` creates."""
    return {f"{guard.table}_no_{event}" for guard in GUARDS for event in EVENTS}


def install(bind: Connection) -> None:
    """Create the triggers (and PostgreSQL's trigger functions) in ``bind``'s database."""
    postgresql = bind.dialect.name == "postgresql"
    for guard in GUARDS:
        if postgresql:
            bind.exec_driver_sql(_pg_function(guard))
        for event in EVENTS:
            sql = _pg_trigger(guard, event) if postgresql else _sqlite_trigger(guard, event)
            bind.exec_driver_sql(sql)


def remove(bind: Connection) -> None:
    """Drop what ``install`` created (for a downgrade, or to empty the tables in tests)."""
    postgresql = bind.dialect.name == "postgresql"
    for guard in GUARDS:
        for event in EVENTS:
            on_table = f" ON {guard.table}" if postgresql else ""
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {guard.table}_no_{event}{on_table}")
        if postgresql:
            bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_function(guard)}()")


def _function(guard: Guard) -> str:
    return f"mdt_refuse_{guard.table}_change"


def _pg_function(guard: Guard) -> str:
    # A BEFORE trigger returns the row to go on with: NEW for an UPDATE, OLD for a DELETE.
    return f"""
        CREATE OR REPLACE FUNCTION {_function(guard)}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF {guard.only_if or 'TRUE'} THEN
                RAISE EXCEPTION '{guard.message}' USING ERRCODE = 'restrict_violation';
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END
        $$"""


def _pg_trigger(guard: Guard, event: str) -> str:
    return (f"CREATE TRIGGER {guard.table}_no_{event} BEFORE {event.upper()} ON {guard.table} "
            f"FOR EACH ROW EXECUTE FUNCTION {_function(guard)}()")


def _sqlite_trigger(guard: Guard, event: str) -> str:
    when = f" WHEN {guard.only_if}" if guard.only_if else ""
    return (f"CREATE TRIGGER {guard.table}_no_{event} BEFORE {event.upper()} ON {guard.table} "
            f"FOR EACH ROW{when} BEGIN SELECT RAISE(ABORT, '{guard.message}'); END")
