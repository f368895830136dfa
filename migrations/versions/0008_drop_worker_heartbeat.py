"""drop worker_heartbeat

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:20:00

A job wrote a row here to prove queue, worker and database were wired. Readiness asks RQ's own
registry of workers instead (main/health.py), so nothing wrote or read the table any more.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_table('worker_heartbeat')


def downgrade():
    op.create_table('worker_heartbeat',
                    sa.Column('name', sa.String(length=200), nullable=False),
                    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('token', sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_heartbeat')))
