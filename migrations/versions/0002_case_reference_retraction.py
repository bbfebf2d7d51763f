"""Retract case references: a mistaken reference is struck out, never deleted.

Revision ID: 0002_case_ref_retraction
Revises: 0001
Create Date: 2026-11-27 17:05:24.765629

"""
import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0002_case_ref_retraction'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('case_references', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retracted_at', mdt.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retraction_reason', sa.String(length=500), nullable=True))
        batch_op.create_check_constraint(
            'retraction_has_reason', 'retracted_at IS NULL OR retraction_reason IS NOT NULL')


def downgrade():
    with op.batch_alter_table('case_references', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_case_references_retraction_has_reason'), type_='check')
        batch_op.drop_column('retraction_reason')
        batch_op.drop_column('retracted_at')
