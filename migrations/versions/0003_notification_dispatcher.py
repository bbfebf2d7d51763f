"""Add the dispatcher's run log and single-dispatcher lease, and notifications.dispatched_at.

Revision ID: 0003_notification_dispatcher
Revises: 0002_case_ref_retraction
Create Date: 2026-11-27 17:06:46.204923

"""
import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0003_notification_dispatcher'
down_revision = '0002_case_ref_retraction'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dispatcher_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('released', sa.Integer(), nullable=False),
    sa.Column('published', sa.Integer(), nullable=False),
    sa.Column('unpublished', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatcher_runs'))
    )
    with op.batch_alter_table('dispatcher_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispatcher_runs_started_at'), ['started_at'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=True),
    sa.Column('expires_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', mdt.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('dispatched_at')

    op.drop_table('leases')
    with op.batch_alter_table('dispatcher_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispatcher_runs_started_at'))

    op.drop_table('dispatcher_runs')
