"""The migrations build exactly the schema the models describe, on both databases.

The session fixture ``app`` builds the test database with ``flask db upgrade``
(never ``create_all``); these tests compare that database with ``db.metadata``,
which holds every model (``mdt/models.py`` imports them all). A model changed
without a migration, or a migration that drifted from its model, fails here
with the list of differences; ``flask --app mdt db migrate`` (``make migrate
m="..."``) compares the same way (``migrations/env.py``) and writes the fix.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from mdt import append_only
from mdt.extensions import db


def test_migrated_database_matches_the_models():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "compare_server_default": True,
        })
        differences = compare_metadata(context, db.metadata)
    # No dialect needs a filter today: SQLite and PostgreSQL both reflect the
    # migrated schema back as the models declare it. Filter a false positive
    # here only by dialect, table and column, with the reason beside it.
    assert not differences, (
        f"the migrated {db.engine.dialect.name} database differs from the models "
        "(add_* is in the models only, remove_* in the database only; write a "
        "migration with `make migrate m=\"...\"`):\n"
        + "\n".join(_describe(diff) for diff in differences)
    )


def test_check_constraints_match_the_models():
    """Alembic's comparison skips CHECK constraints, and the invariants live in them.

    Names are compared, not the SQL: each database rewrites the expression
    in its own way. The naming convention gives every CHECK a stable name.
    """
    preparer = db.engine.dialect.identifier_preparer
    declared = {
        (table.name, preparer.format_constraint(constraint))
        for table in db.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, sa.CheckConstraint)
    }
    with db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        migrated = {
            (table, check["name"])
            for table in inspector.get_table_names() if table != "alembic_version"
            for check in inspector.get_check_constraints(table)
        }
    assert declared == migrated, (
        "CHECK constraints differ; in the models only: "
        f"{sorted(declared - migrated)}; in the migrated database only: "
        f"{sorted(migrated - declared)}"
    )


def test_the_append_only_triggers_are_installed():
    """Alembic compares no triggers; a SQLite batch rebuild of a table silently drops its own.

    The names are those ``mdt.append_only.install`` creates: a later migration
    that rebuilds a guarded table must install them again.
    """
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        installed = set(conn.execute(sa.text(query)).scalars())
    assert append_only.trigger_names() <= installed, (
        f"missing triggers: {sorted(append_only.trigger_names() - installed)}")


def test_the_revisions_form_one_line_and_the_database_is_at_its_head():
    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, f"more than one head: {script.get_heads()}"
    with db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    assert current == tuple(script.get_heads())


def _describe(diff) -> str:
    """One line per difference of ``compare_metadata``'s (nested) list."""
    if isinstance(diff, list):  # the changes to one column come grouped
        return "\n".join(_describe(item) for item in diff)
    operation, *args = diff
    if operation.startswith("modify_"):
        _schema, table, column, _existing, old, new = args
        return f"  {operation} {table}.{column}: {old!r} in the database, {new!r} in the models"
    if operation in ("add_column", "remove_column"):
        _schema, table, column = args
        return f"  {operation} {table}.{column.name} {column.type!r}"
    return f"  {operation} " + " ".join(_name(arg) for arg in args if arg is not None)


def _name(item) -> str:
    if isinstance(item, sa.Table):
        return item.name
    table = getattr(item, "table", None)
    if table is not None and isinstance(item, sa.ForeignKeyConstraint):
        targets = ", ".join(element.target_fullname for element in item.elements)
        return (f"{item.name} on {table.name} ({', '.join(item.column_keys)}) -> {targets}"
                f" ON DELETE {item.ondelete or 'NO ACTION'}")
    if table is not None:  # an index or a unique constraint
        columns = ", ".join(column.name for column in item.columns)
        return f"{item.name} on {table.name} ({columns})"
    return str(item)


def test_a_batch_rebuild_on_sqlite_keeps_the_rows_that_point_at_the_table(tmp_path):
    """Batch mode copies, drops and renames a table; foreign keys must not cascade.

    Runs the real migrations plus one extra revision that rebuilds ``users``
    (what a batch ``alter_column`` or ``create_check_constraint`` does on SQLite)
    over a database holding a user with a role, and checks the role survived.
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL alters tables in place; there is nothing to rebuild
    scripts = tmp_path / "migrations"
    shutil.copytree(current_app.extensions["migrate"].directory, scripts)
    head = ScriptDirectory(str(scripts)).get_current_head()
    (scripts / "versions" / "9999_rebuild_users.py").write_text(
        '"""Rebuild users, as a batch alteration does."""\n'
        "from alembic import op\n\n"
        "revision = '9999_rebuild_users'\n"
        f"down_revision = {head!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        "    with op.batch_alter_table('users', recreate='always'):\n"
        "        pass\n\n\n"
        "def downgrade():\n"
        "    pass\n")
    database = tmp_path / "rebuild.sqlite"
    env = {**os.environ, "MDT_INSTANCE_PATH": str(tmp_path),
           "MDT_DATABASE_URL": f"sqlite:///{database}"}
    def upgrade(revision: str) -> None:
        subprocess.run([sys.executable, "-m", "flask", "--app", "mdt", "db", "upgrade",
                        "--directory", str(scripts), revision],
                       env=env, cwd=Path(__file__).parent.parent, capture_output=True,
                       text=True, check=True)

    upgrade(head)
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (email, name, discipline, password_hash, is_active, "
            "created_at, updated_at) VALUES ('a@b.c', 'A', 'other', 'x', 1, "
            "'2026-12-01 00:00:00', '2026-12-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO user_roles (user_id, role) SELECT id, 'clinician' "
                             "FROM users"))
    engine.dispose()
    upgrade("9999_rebuild_users")
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_roles")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 1
    engine.dispose()
