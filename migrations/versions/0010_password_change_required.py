"""a password set by someone else must be changed at next sign-in

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:20:00

An administrator who sets a user's password knows it. `user.must_change_password` marks such a
password: after sign-in the user can do nothing but choose a new one.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user') as batch:
        batch.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('user') as batch:
        batch.drop_column('must_change_password')
