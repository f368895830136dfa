"""search's newest-first walk over journal posts, on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 13:20:00

Search lists posts by document_date DESC NULLS LAST, id DESC. A common word matches most of ten
years of posts, and search then walks ix_journal_post_date_id in that order and stops after a page.
PostgreSQL reads an ascending index backwards as DESC NULLS FIRST, so it could not use the index of
0006 for that order and sorted every match; here the index gets the order itself. SQLite reads the
0006 index in that order already (NULL is its lowest value), so nothing changes there.
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_journal_post_date_id', table_name='journal_post')
    op.create_index('ix_journal_post_date_id', 'journal_post', ['document_date', 'id'],
                    postgresql_ops={"document_date": "DESC NULLS LAST", "id": "DESC"})


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_journal_post_date_id', table_name='journal_post')
    op.create_index('ix_journal_post_date_id', 'journal_post', ['document_date', 'id'])
