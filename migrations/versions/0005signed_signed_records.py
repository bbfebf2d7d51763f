"""A signed record and its context: unique agenda positions, the signer as at signing,
meeting corrections, and triggers refusing changes to signed records and audit entries.

Revision ID: 0005signed_signed_records
Revises: 0004_notification_prefs
Create Date: 2026-12-01 12:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

import mdt.db
from mdt import append_only

# revision identifiers, used by Alembic.
revision = '0005signed_signed_records'
down_revision = '0005sessions_throttle'
branch_labels = None
depends_on = None

DISCIPLINES = ('radiation_oncology', 'orthopaedics', 'interventional_radiology',
               'medical_oncology', 'radiology', 'pathology', 'palliative_care', 'nursing',
               'other')


def _signer_discipline():
    return sa.Enum(*DISCIPLINES, name='signer_discipline', native_enum=False,
                   create_constraint=True, length=40)


def upgrade():
    _renumber_duplicate_positions()
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f('uq_agenda_items_meeting_id_position'), ['meeting_id', 'position'])
    _add_signer_snapshot()
    _create_meeting_corrections()
    # Last: a batch rebuild of a guarded table on SQLite would drop its triggers.
    append_only.install(op.get_bind())


def downgrade():
    append_only.remove(op.get_bind())
    with op.batch_alter_table('meeting_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_corrections_meeting_id'))
    op.drop_table('meeting_corrections')
    with op.batch_alter_table('consensuses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_consensuses_signer_discipline'), type_='check')
        batch_op.drop_column('signed_by_discipline')
        batch_op.drop_column('signed_by_name')
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


def _add_signer_snapshot():
    """The signer's name and discipline on each consensus, filled from the users table."""
    with op.batch_alter_table('consensuses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_by_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('signed_by_discipline', _signer_discipline(),
                                      nullable=True))
    op.execute("UPDATE consensuses SET "
               "signed_by_name = (SELECT name FROM users WHERE users.id = signed_by_id), "
               "signed_by_discipline = (SELECT discipline FROM users "
               "WHERE users.id = signed_by_id)")
    with op.batch_alter_table('consensuses', schema=None) as batch_op:
        batch_op.alter_column('signed_by_name', existing_type=sa.String(length=200),
                              nullable=False)
        batch_op.alter_column('signed_by_discipline', existing_type=_signer_discipline(),
                              nullable=False)


def _create_meeting_corrections():
    op.create_table('meeting_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.CheckConstraint('length(trim(reason)) > 0',
                       name=op.f('ck_meeting_corrections_reason_required')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'],
                            name=op.f('fk_meeting_corrections_author_id_users'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'],
                            name=op.f('fk_meeting_corrections_meeting_id_meetings'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_corrections'))
    )
    with op.batch_alter_table('meeting_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_corrections_meeting_id'), ['meeting_id'],
                              unique=False)
