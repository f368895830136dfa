"""start pages: the restanseliste from its index alone

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 05:00:00

A handler's start page (main/start.py) shows the oldest of their restanser and counts them, as the
restanseliste does. (post_type, written_off_at) found the posts not written off, and then every one of
them was read for its case and the dates the list is ordered by: on the ten-year bench data
(bench/bigdata.py, 611,000 posts; 78,000 not written off, 43,000 of them the giant handler's) that
was most of the page. The index now holds the case and the dates too (and, on PostgreSQL, the id), so
the list and its count read the index alone, matched to the user's cases. It replaces the old one (its
first two columns are the old index). Building it on the bench data takes about 3 s on either engine.

On SQLite the new index is analyzed when the database has statistics (sqlite_stat1): without its own
row there, the planner took it for a selective index of post_type and walked every outgoing post for
each case of the closing worklist (minutes for the giant handler's start page). Only this index is
read (under a second on the bench data); a database never analyzed stays so.
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_journal_post_outstanding', table_name='journal_post')
    op.create_index('ix_journal_post_outstanding', 'journal_post',
                    ['post_type', 'written_off_at', 'case_id', 'document_date', 'received_on', 'registered_at'],
                    postgresql_include=['id'])
    _analyze()


def downgrade():
    op.drop_index('ix_journal_post_outstanding', table_name='journal_post')
    op.create_index('ix_journal_post_outstanding', 'journal_post', ['post_type', 'written_off_at'])
    _analyze()


def _analyze():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")).first():
        op.execute("ANALYZE ix_journal_post_outstanding")
