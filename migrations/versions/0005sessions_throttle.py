"""Add a session generation to users (ends every session at once) and atomic throttle counters.

Revision ID: 0005sessions_throttle
Revises: 0004_notification_prefs
Create Date: 2026-12-02 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0005sessions_throttle'
down_revision = '0004_notification_prefs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('throttle_counters',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('window_started_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttle_counters'))
    )
    # Existing sessions carry a bare user id, which the new loader refuses:
    # everyone signs in again once after this upgrade.
    # Not in batch mode: SQLite adds a column with a constant default in place,
    # whereas a batch rebuild drops users, and with foreign keys on, that
    # cascades to user_roles (their rows were lost when this was tried).
    op.add_column('users', sa.Column('session_generation', sa.Integer(), server_default=sa.text('1'), nullable=False))


def downgrade():
    # SQLite >= 3.35 drops a column in place; a batch rebuild of users would
    # drop and recreate a table that other tables reference.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE users DROP COLUMN session_generation')
    else:
        op.drop_column('users', 'session_generation')
    op.drop_table('throttle_counters')
