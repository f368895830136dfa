"""paper_original.document_id may be empty: a paper original's record outlives the post it was filed on

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 00:40:00

A held-back post deleted as misregistered sends its mail back to the inbox, and its documents go with
it. The paper original's record went too, also when its destruction was already recorded: the register
of destroyed originals lost the row, and when the mail was filed again a new record put the destroyed
paper back on the list of what is due. The record now stays with its inbox item, its document empty
while the mail waits, and is named by the post the mail is filed on next.
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    # batch: SQLite changes a column's NOT NULL only by copying the table (no trigger is on it, nor names it)
    with op.batch_alter_table('paper_original') as batch:
        batch.alter_column('document_id', existing_type=sa.Integer(), nullable=True)


def downgrade():
    op.execute("DELETE FROM paper_original WHERE document_id IS NULL")
    with op.batch_alter_table('paper_original') as batch:
        batch.alter_column('document_id', existing_type=sa.Integer(), nullable=False)
