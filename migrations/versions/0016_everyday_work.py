"""teams carry roles, the leader's hold-back decision, the leader manages users and teams

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 20:00:00

A team (access group) carries roles: its members hold them besides their own. A post held back
from access at registration waits for the leader's decision: released (finalized and archived as
any other) or kept held back with a reason. The leader is one of those responsible for rights, so
the Leiar role gains assign_roles and manage_groups where an install still has the shipped matrix
without them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

LEADER_GAINS = ('assign_roles', 'manage_groups')


def upgrade():
    op.create_table(
        'group_role',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('role_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['access_group.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['role_id'], ['role.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group_id', 'role_id'),
    )
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode rebuilds the table and would drop the
    # triggers that keep finalized posts unchanged; SQLite cannot add a foreign key to an existing
    # table, so the reference is declared on PostgreSQL only (as in 0005).
    op.add_column('journal_post', sa.Column('hold_decision', sa.String(length=10), nullable=True))
    op.add_column('journal_post', sa.Column('hold_reason', sa.String(length=500), nullable=False,
                                            server_default=''))
    op.add_column('journal_post', sa.Column('hold_decided_by_id', sa.Integer(), nullable=True))
    op.add_column('journal_post', sa.Column('hold_decided_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name != 'sqlite':
        op.create_foreign_key('fk_journal_post_hold_decided_by_id_user', 'journal_post', 'user',
                              ['hold_decided_by_id'], ['id'])
    op.create_index('ix_journal_post_held_back', 'journal_post', ['held_back', 'hold_decision'])
    # Mail whose held-back post was deleted as misregistered is held back again when filed anew.
    op.add_column('inbox_item', sa.Column('hold_back_required', sa.Boolean(), nullable=False,
                                          server_default=sa.false()))

    role = sa.table('role', sa.column('id', sa.Integer), sa.column('code', sa.String))
    role_permission = sa.table('role_permission', sa.column('role_id', sa.Integer),
                               sa.column('permission_code', sa.String))
    bind = op.get_bind()
    leader = bind.execute(sa.select(role.c.id).where(role.c.code == 'leiar')).scalar()
    if leader is not None:
        held = set(bind.execute(sa.select(role_permission.c.permission_code)
                                .where(role_permission.c.role_id == leader)).scalars())
        rows = [{'role_id': leader, 'permission_code': code} for code in LEADER_GAINS if code not in held]
        if rows:
            op.bulk_insert(role_permission, rows)


def downgrade():
    op.drop_column('inbox_item', 'hold_back_required')
    op.drop_index('ix_journal_post_held_back', table_name='journal_post')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_journal_post_hold_decided_by_id_user', 'journal_post', type_='foreignkey')
    for name in ('hold_decided_at', 'hold_decided_by_id', 'hold_reason', 'hold_decision'):
        op.drop_column('journal_post', name)
    op.drop_table('group_role')
