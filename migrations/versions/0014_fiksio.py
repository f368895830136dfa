"""archive_job: the Fiks IO message id of the last send, and when the archive said "mottatt"

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 14:30:00

Over Fiks IO a reply names the message it answers by Fiks IO's own message id (svar-til), which Fiks
IO gives each send; the job keeps it to find itself again. received_at is when the archive said it
had the message ("mottatt"), shown on the archive log while the job waits for the receipt.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('archive_job', sa.Column('fiksio_message_id', sa.String(length=36), nullable=True))
    op.add_column('archive_job', sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_archive_job_fiksio_message_id', 'archive_job', ['fiksio_message_id'])


def downgrade():
    op.drop_index('ix_archive_job_fiksio_message_id', 'archive_job')
    op.drop_column('archive_job', 'received_at')
    op.drop_column('archive_job', 'fiksio_message_id')
