"""start pages: journal posts by who wrote them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:30:00

Every start page asks whether the signed-in user has handler's work (main/start.py, is_handler): among
other things, a draft they wrote. journal_post had no index on created_by_id, so the question walked
every draft by the status index, for every user who is not a handler by role (a leader, a secretary, a
consultant): ~45 ms on the ten-year bench data (bench/bigdata.py, 47,000 drafts) on both engines.
(created_by_id, status) answers it from the index alone.
"""
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_journal_post_created_by', 'journal_post', ['created_by_id', 'status'])


def downgrade():
    op.drop_index('ix_journal_post_created_by', table_name='journal_post')
