"""Add notification preferences (e-mail on or off per kind) and private calendar feed tokens.

Revision ID: 0004_notification_prefs
Revises: 0003_notification_dispatcher
Create Date: 2026-11-27 17:08:30.191139

"""
import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0004_notification_prefs'
down_revision = '0003_notification_dispatcher'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_feed_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('last_used_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_calendar_feed_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feed_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feed_tokens_token_hash')),
    sa.UniqueConstraint('user_id', name=op.f('uq_calendar_feed_tokens_user_id'))
    )
    op.create_table('notification_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('invitation', 'meeting_reminder', 'agenda_closing', 'opinion_pending', 'consensus_signed', 'amendment', 'action_due', 'case_deferred', name='notification_preference_kind', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('send_email', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'kind', name=op.f('pk_notification_preferences'))
    )


def downgrade():
    op.drop_table('notification_preferences')
    op.drop_table('calendar_feed_tokens')
