"""stage timings (what the server's time estimates learn from)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vidscene.db.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stage_timings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('training_mode', sa.String(length=16), nullable=False),
    sa.Column('preset', sa.String(length=16), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('finished_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_stage_timings_lookup', 'stage_timings', ['stage', 'training_mode', 'preset', 'finished_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_stage_timings_lookup', table_name='stage_timings')
    op.drop_table('stage_timings')
