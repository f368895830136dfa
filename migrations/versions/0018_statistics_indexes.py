"""statistics: journal posts by registration time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 23:10:00

The statistics page counts a period's documents per month by type and by how they came
(docs/statistics.md): journal posts by registered_at, which had no index, so both figures read every
post of ten years for one month's or one year's. (registered_at, post_type, id) reads only the
period's posts, from the index alone (id: the channel figure looks up the inbox item filed as each
post). On the ten-year bench data (bench/bigdata.py, 611k posts; bench/statistics_page.py), one year:
documents by type 400 -> 200 ms on SQLite and 290 -> 100 ms on PostgreSQL.

The archive figures need no index of their own: they count by the date index alone and find the few
jobs that are not archived by the archive status and deleted-jobs indexes.
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_journal_post_registered', 'journal_post', ['registered_at', 'post_type', 'id'])


def downgrade():
    op.drop_index('ix_journal_post_registered', table_name='journal_post')
