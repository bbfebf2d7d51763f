"""Keep delivery timing in the database: leases per task and claim, retry times, failing since.

notifications.lease_expires_at (queued, held or claimed until), next_attempt_at
(when the dispatcher may publish the row: its due time, or its next retry;
indexed with the status for the dispatcher's scan) and failing_since (the
start of a run of failed attempts, for the retry horizon; indexed, for the
few rows waiting for a retry).

Revision ID: 0005delivery_retry_leases
Revises: 0004_notification_prefs
Create Date: 2026-12-02 09:00:00.000000

"""
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0005delivery_retry_leases'
down_revision = '0005signed_signed_records'
branch_labels = None
depends_on = None

#: What the code before this revision allowed a claim: 10 minutes.
OLD_CLAIM_LEASE = timedelta(minutes=10)


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_expires_at', mdt.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', mdt.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('failing_since', mdt.db.UTCDateTime(timezone=True),
                                      nullable=True))
    # Every row's next attempt is its due time (a retry waiting in a countdown
    # of the old code is published again by the dispatcher; its claim keeps it single).
    op.execute('UPDATE notifications SET next_attempt_at = due_at')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('next_attempt_at', existing_type=mdt.db.UTCDateTime(timezone=True),
                              nullable=False)
        batch_op.create_index('ix_notifications_pending_next_attempt',
                              ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notifications_failing_since', ['failing_since'], unique=False)
    _lease_rows_being_sent()


def _lease_rows_being_sent():
    """Give a row claimed before the upgrade the 10 minutes its worker was promised."""
    notifications = sa.table('notifications', sa.column('id', sa.Integer),
                             sa.column('status', sa.String),
                             sa.column('claimed_at', mdt.db.UTCDateTime(timezone=True)),
                             sa.column('lease_expires_at', mdt.db.UTCDateTime(timezone=True)))
    connection = op.get_bind()
    claimed = connection.execute(sa.select(notifications.c.id, notifications.c.claimed_at).where(
        notifications.c.status == 'sending', notifications.c.claimed_at.is_not(None))).all()
    for row_id, claimed_at in claimed:
        connection.execute(notifications.update().where(notifications.c.id == row_id)
                           .values(lease_expires_at=claimed_at + OLD_CLAIM_LEASE))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_failing_since')
        batch_op.drop_index('ix_notifications_pending_next_attempt')
        batch_op.drop_column('failing_since')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('lease_expires_at')
