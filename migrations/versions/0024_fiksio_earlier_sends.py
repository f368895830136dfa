"""archive_job: the Fiks IO message ids of a job's earlier sends

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 00:10:00

A job sent again (a retry, "Prøv på nytt") gets a new Fiks IO message id; the claim clears the old one
from fiksio_message_id, and until the new send is accepted the consumer finds an error by the job's own
correlation id. An error about the earlier send arriving in that window failed the send under way, and
the new send's receipt was then dropped as "already done". The claim now keeps the ids it clears here
(space separated, oldest first), so the consumer can tell a reply to an earlier send from one to the
send under way.
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('archive_job', sa.Column('fiksio_earlier_ids', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('archive_job') as batch:
        batch.drop_column('fiksio_earlier_ids')
