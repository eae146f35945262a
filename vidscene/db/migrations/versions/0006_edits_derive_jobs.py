"""scene edits (crop and clean), edited outputs beside the originals, and derive jobs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vidscene.db.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scenes') as batch:
        batch.add_column(sa.Column('edit_version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('outputs') as batch:
        batch.add_column(sa.Column('edit_version', sa.Integer(), nullable=False, server_default='0'))
        batch.drop_constraint('uq_output', type_='unique')
        batch.create_unique_constraint('uq_output', ['scene_id', 'output_type', 'iteration', 'edit_version'])
    op.create_table('scene_edits',
    sa.Column('scene_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('operations', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('kept', sa.BigInteger(), nullable=True),
    sa.Column('total', sa.BigInteger(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('updated_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['scene_id'], ['scenes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scene_id')
    )
    op.create_table('derive_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('scene_id', sa.String(length=32), nullable=False),
    sa.Column('edit_version', sa.Integer(), nullable=False),
    sa.Column('output_types', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', vidscene.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['scene_id'], ['scenes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_derive_jobs_scene_id'), 'derive_jobs', ['scene_id'], unique=False)
    op.create_index(op.f('ix_derive_jobs_state'), 'derive_jobs', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_derive_jobs_state'), table_name='derive_jobs')
    op.drop_index(op.f('ix_derive_jobs_scene_id'), table_name='derive_jobs')
    op.drop_table('derive_jobs')
    op.drop_table('scene_edits')
    op.execute("DELETE FROM outputs WHERE edit_version <> 0")
    with op.batch_alter_table('outputs') as batch:
        batch.drop_constraint('uq_output', type_='unique')
        batch.create_unique_constraint('uq_output', ['scene_id', 'output_type', 'iteration'])
        batch.drop_column('edit_version')
    with op.batch_alter_table('scenes') as batch:
        batch.drop_column('edit_version')
