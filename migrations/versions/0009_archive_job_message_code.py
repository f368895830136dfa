"""archive job messages as a code and values

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:45:00

The archive log's Message column was stored as Nynorsk text, so a reader using Bokmål or English
read Nynorsk. A job now keeps the message's code and values (archive/job_messages.py) and the page
renders them in the reader's language; `message` keeps the Nynorsk text, and older jobs (no code)
show it as before.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('archive_job') as batch:
        batch.add_column(sa.Column('message_code', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('message_params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('archive_job') as batch:
        batch.drop_column('message_params')
        batch.drop_column('message_code')
