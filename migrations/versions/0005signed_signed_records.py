"""A signed record and its context: unique agenda positions; triggers refusing changes to
signed records and audit entries.

Revision ID: 0005signed_signed_records
Revises: 0004_notification_prefs
Create Date: 2026-12-01 12:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from mdt import append_only

# revision identifiers, used by Alembic.
revision = '0005signed_signed_records'
down_revision = '0005sessions_throttle'
branch_labels = None
depends_on = None


def upgrade():
    _renumber_duplicate_positions()
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f('uq_agenda_items_meeting_id_position'), ['meeting_id', 'position'])
    # Last: a batch rebuild of a guarded table on SQLite would drop its triggers.
    append_only.install(op.get_bind())


def downgrade():
    append_only.remove(op.get_bind())
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_agenda_items_meeting_id_position'),
                                 type_='unique')


def _renumber_duplicate_positions():
    """Number 1, 2, ... (by position, then id) the agendas where two items share a place."""
    bind = op.get_bind()
    clashing = sa.text("SELECT meeting_id FROM agenda_items GROUP BY meeting_id, position "
                       "HAVING COUNT(*) > 1")
    meeting_ids = sorted({row.meeting_id for row in bind.execute(clashing)})
    for meeting_id in meeting_ids:
        ids = bind.execute(sa.text(
            "SELECT id FROM agenda_items WHERE meeting_id = :m ORDER BY position, id"),
            {"m": meeting_id}).scalars().all()
        for position, item_id in enumerate(ids, start=1):
            bind.execute(sa.text("UPDATE agenda_items SET position = :p WHERE id = :i"),
                         {"p": position, "i": item_id})
