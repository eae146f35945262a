"""share links

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vidscene.db.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shares',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('scene_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['scene_id'], ['scenes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token')
    )
    op.create_index(op.f('ix_shares_scene_id'), 'shares', ['scene_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_shares_scene_id'), table_name='shares')
    op.drop_table('shares')
