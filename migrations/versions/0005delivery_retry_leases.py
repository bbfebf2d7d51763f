"""Hold notification rows under a lease per task and per claim (notifications.lease_expires_at).

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
        batch_op.drop_column('lease_expires_at')
