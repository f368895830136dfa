"""archive identity: event snapshots, the archive's numbers, structured addresses, expedition, settings

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 11:30:00

- archive_job.snapshot: what the archive needs, as it was when the change happened (written in the
  same transaction). The message is built from it alone. Older jobs have none and are built from the
  current state, as before.
- case and journal_post keep the numbers the archive's receipt gave them (systemID, case year and
  sequence number, journal post number), shown as "I arkivet: 2026/1234-5".
- journal_post.expedited_on / expedition: the day a letter left us (SvarUt confirmed it, or it went
  on paper) and how; sent_on stays a metadata field that only a correction changes.
- correspondent: structured address (the old one-line `address` holds the street lines), and the
  korrespondansepartID the archive got with the post. Rows of finalized posts cannot be updated
  here (the immutability triggers), so old rows keep NULL and are read as before.
- user.archive_id: the person's identity in the archive (initials or the archive's user id).
- setting: values the administrator keeps on screen (the archive's unit and part, ...).

Only ADD COLUMN and CREATE TABLE: on SQLite a batch table rebuild would drop the immutability
triggers of journal_post and correspondent.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('archive_job', sa.Column('snapshot', sa.JSON(), nullable=True))
    op.add_column('case', sa.Column('archive_system_id', sa.String(length=64), nullable=True))
    op.add_column('case', sa.Column('archive_year', sa.Integer(), nullable=True))
    op.add_column('case', sa.Column('archive_seq', sa.Integer(), nullable=True))
    op.add_column('journal_post', sa.Column('archive_system_id', sa.String(length=64), nullable=True))
    op.add_column('journal_post', sa.Column('archive_year', sa.Integer(), nullable=True))
    op.add_column('journal_post', sa.Column('archive_journal_seq', sa.Integer(), nullable=True))
    op.add_column('journal_post', sa.Column('archive_post_number', sa.Integer(), nullable=True))
    op.add_column('journal_post', sa.Column('expedited_on', sa.Date(), nullable=True))
    op.add_column('journal_post', sa.Column('expedition', sa.String(length=10), nullable=True))
    op.add_column('correspondent', sa.Column('postal_code', sa.String(length=10), nullable=False,
                                             server_default=''))
    op.add_column('correspondent', sa.Column('city', sa.String(length=100), nullable=False, server_default=''))
    op.add_column('correspondent', sa.Column('country', sa.String(length=2), nullable=False, server_default='NO'))
    op.add_column('correspondent', sa.Column('archive_party_id', sa.String(length=36), nullable=True))
    op.add_column('user', sa.Column('archive_id', sa.String(length=100), nullable=False, server_default=''))
    op.create_table(
        'setting',
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('value', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_setting_updated_by_id_user'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_setting')),
    )


def downgrade():
    op.drop_table('setting')
    for table, column in (('user', 'archive_id'), ('correspondent', 'archive_party_id'),
                          ('correspondent', 'country'), ('correspondent', 'city'),
                          ('correspondent', 'postal_code'), ('journal_post', 'expedition'),
                          ('journal_post', 'expedited_on'), ('journal_post', 'archive_post_number'),
                          ('journal_post', 'archive_journal_seq'), ('journal_post', 'archive_year'),
                          ('journal_post', 'archive_system_id'), ('case', 'archive_seq'),
                          ('case', 'archive_year'), ('case', 'archive_system_id'), ('archive_job', 'snapshot')):
        op.drop_column(table, column)
