"""journal_post.content_version: what a draft shows, counted, so an action knows it acts on what it read

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 00:20:00

Signing, sending to approval and finalizing render a letter's PDF from the draft (its text, title and
recipients) and then work on it for up to seconds (the signature, the PDF checks). A save of the letter's
text, or an edit of the post, that committed in between was not seen: the signature went onto a PDF of
the old text, the approver was asked to approve what the handler had changed since, or a post was
finalized with a title and recipients its PDF does not show. Every change to what a draft shows now
counts this column up, with the post's status, in one conditional UPDATE of the post row; every action
on the draft's content does the same, on the count it read before it rendered, so of the two, the one
that comes second is refused ("changed meanwhile") and nothing of it is kept. A column of the post row
itself, so PostgreSQL checks it again on the row as the other transaction left it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('journal_post', sa.Column('content_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    # Not Alembic's batch mode: on SQLite it copies the table, without the finality guards' triggers on it.
    # SQLite (3.35 and later) and PostgreSQL drop the column in place.
    op.drop_column('journal_post', 'content_version')
