"""resumable (tus) uploads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vidscene.db.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tus_uploads',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('scene_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['scene_id'], ['scenes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_tus_uploads_expires_at'), 'tus_uploads', ['expires_at'], unique=False)
    op.create_index(op.f('ix_tus_uploads_scene_id'), 'tus_uploads', ['scene_id'], unique=False)
    op.create_index(op.f('ix_tus_uploads_user_id'), 'tus_uploads', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_tus_uploads_user_id'), table_name='tus_uploads')
    op.drop_index(op.f('ix_tus_uploads_scene_id'), table_name='tus_uploads')
    op.drop_index(op.f('ix_tus_uploads_expires_at'), table_name='tus_uploads')
    op.drop_table('tus_uploads')
