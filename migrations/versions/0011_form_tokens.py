"""form tokens: a create form sent twice makes one object

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 09:00:00

Each create form (journal post, case, client, organisation) carries a hidden token made when the
form is rendered. The service records it with the object it makes, in the same transaction; the
unique token decides which of two sendings makes the object (docs/decisions.md, "One effect per
action").
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('form_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_form_token_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_token')),
    sa.UniqueConstraint('token', name=op.f('uq_form_token_token'))
    )
    op.create_index(op.f('ix_form_token_created_at'), 'form_token', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_form_token_created_at'), table_name='form_token')
    op.drop_table('form_token')
