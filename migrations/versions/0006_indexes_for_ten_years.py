"""indexes for ten years of data: the archive log's counts, the inbox's paging

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 11:15:00

ix_archive_job_log (deleted_at, id) goes: with a few soft-deleted jobs among hundreds of
thousands, SQLite's planner (average rows per key) took it for "deleted_at IS NULL" and read
every job to count the handful of failed or running ones, on every page that shows the menu.
Without it the counts use ix_archive_job_failed / ix_archive_job_due, the log's newest-first
page walks the primary key, and the soft-deleted jobs have a partial index of their own.
The sweep's "due Ny jobs" gets a partial index too (PostgreSQL walked the primary key past every
done job), and the log's date filter an index on finalized_on. Search lists cases and posts
newest first a page at a time: (opened_on, id) and (document_date, id) let it stop after a page.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

DELETED = sa.text("deleted_at IS NOT NULL")
NEW = sa.text("job_status = 'new' AND deleted_at IS NULL")


def upgrade():
    op.drop_index('ix_archive_job_log', table_name='archive_job')
    op.create_index('ix_archive_job_deleted', 'archive_job', ['id'], sqlite_where=DELETED, postgresql_where=DELETED)
    op.create_index('ix_archive_job_new', 'archive_job', ['id'], sqlite_where=NEW, postgresql_where=NEW)
    op.create_index('ix_archive_job_finalized_on', 'archive_job', ['finalized_on'])
    op.create_index('ix_inbox_item_arrived', 'inbox_item', ['arrived_at', 'id'])
    op.create_index('ix_case_opened', 'case', ['opened_on', 'id'])
    op.create_index('ix_journal_post_date_id', 'journal_post', ['document_date', 'id'])


def downgrade():
    op.drop_index('ix_journal_post_date_id', table_name='journal_post')
    op.drop_index('ix_case_opened', table_name='case')
    op.drop_index('ix_archive_job_finalized_on', table_name='archive_job')
    op.drop_index('ix_archive_job_new', table_name='archive_job')
    op.drop_index('ix_inbox_item_arrived', table_name='inbox_item')
    op.drop_index('ix_archive_job_deleted', table_name='archive_job')
    op.create_index('ix_archive_job_log', 'archive_job', ['deleted_at', 'id'])
