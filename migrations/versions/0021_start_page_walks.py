"""start pages: a giant caseload's lists walked in their order

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 11:00:00

The start page of a handler with a giant caseload (the ten-year bench data, bench/bigdata.py: 10,600 open
cases, 24,000 drafts, 43,000 restanser) read and sorted every row of its lists to show the first few and
count them. The lists (main/start.py) now walk an index in their own order, stop after the rows shown,
and count up to a cap; these indexes are the walks:

- case (handler_id, status, opened_on, id): my open cases, oldest first, and their count from the index
  alone; it replaces (handler_id, status), its first two columns;
- case (handler_id, status, last_activity_at, id): my cases to close, in the closing worklist's order;
- case (status, handler_id, opened_on, id): the leader's open cases by handler, grouped as the index is
  ordered; the open cases of other handlers that a user co-handles, from the index alone;
- case_cohandler (user_id, case_id): the cases a user co-handles from the index alone; it replaces
  (user_id);
- journal_post (status, registered_at, id): a giant caseload's drafts, oldest first
  (ix_journal_post_status, its first column, stays: every other list of posts by status uses it, and
  the table is large);
- journal_post (case_id, post_type, status): whether a case has a finished assessment or unfinished work,
  without reading each of its posts;
- journal_post (post_type, written_off_at, document_date, registered_at, id, case_id): the restanser
  with a document date (nearly all) in the restanseliste's order, oldest first, each matched to the
  user's cases from the index alone;
- post_event (to_user_id, kind): the drafts returned to me (the events were read in full).

Building them on the bench data takes a few seconds on either engine. On SQLite the new indexes are
analyzed when the database has statistics (sqlite_stat1), as 0020 did: without their rows there, the
planner misjudges them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

NEW = (
    ('ix_case_handler_opened', 'case', ['handler_id', 'status', 'opened_on', 'id']),
    ('ix_case_handler_activity', 'case', ['handler_id', 'status', 'last_activity_at', 'id']),
    ('ix_case_status_handler', 'case', ['status', 'handler_id', 'opened_on', 'id']),
    ('ix_case_cohandler_user_case', 'case_cohandler', ['user_id', 'case_id']),
    ('ix_journal_post_status_registered', 'journal_post', ['status', 'registered_at', 'id']),
    ('ix_journal_post_case_type_status', 'journal_post', ['case_id', 'post_type', 'status']),
    ('ix_journal_post_outstanding_dated', 'journal_post',
     ['post_type', 'written_off_at', 'document_date', 'registered_at', 'id', 'case_id']),
    ('ix_post_event_to_user', 'post_event', ['to_user_id', 'kind']),
)
REPLACED = (
    ('ix_case_handler_status', 'case', ['handler_id', 'status']),
    ('ix_case_cohandler_user_id', 'case_cohandler', ['user_id']),
)


def upgrade():
    for name, table, columns in NEW:
        op.create_index(name, table, columns)
    for name, table, _columns in REPLACED:
        op.drop_index(name, table_name=table)
    _analyze([name for name, _table, _columns in NEW])


def downgrade():
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns)
    for name, table, _columns in NEW:
        op.drop_index(name, table_name=table)
    _analyze([name for name, _table, _columns in REPLACED])


def _analyze(names):
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")).first():
        for name in names:
            op.execute(f"ANALYZE {name}")
