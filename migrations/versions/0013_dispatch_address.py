"""dispatch: the recipient's second address line and country

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:10:00

Correspondents now keep structured addresses (street lines, postal code, place, country); a shipment
to SvarUt keeps the second street line and the country too, so a letter abroad is printed with its
country and a two-line address is not squeezed into one.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('dispatch', sa.Column('address_line2', sa.String(length=300), nullable=False, server_default=''))
    op.add_column('dispatch', sa.Column('country', sa.String(length=2), nullable=False, server_default='NO'))


def downgrade():
    op.drop_column('dispatch', 'country')
    op.drop_column('dispatch', 'address_line2')
