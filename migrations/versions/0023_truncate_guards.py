"""truncate guards: PostgreSQL's TRUNCATE cannot empty what the finality guards keep

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 21:30:00

The finality guards of 0002, 0015 and 0022 are row triggers: PostgreSQL does not fire them for a
TRUNCATE, which empties a table at once (with CASCADE, every table that refers to it too). One
`TRUNCATE client CASCADE` took every finalized post, its documents, signatures and history, while a
DELETE of any of them was refused. The activity log had a TRUNCATE guard from the start (0001); now the
finality guards have one too, a statement trigger that refuses what the row triggers would refuse for
some row of the table:

- journal_post, document, correspondent, letter, post_signature, post_event: while any journal post is
  finalized or dispatched (a database of drafts only may still be emptied);
- stored_file: while any document uses a stored file;
- metadata_correction, document_template_version: while the table has a row (they are never deleted).

SQLite has no TRUNCATE: its `DELETE FROM t` without WHERE empties a table at once only when the table
has no triggers, so the row triggers hold there.
"""
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

POST_TABLES = ["journal_post", "document", "correspondent", "letter", "post_signature", "post_event"]
KEPT_TABLES = ["metadata_correction", "document_template_version"]
TABLES = [*POST_TABLES, "stored_file", *KEPT_TABLES]


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION finality_truncate_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE kept boolean;
        BEGIN
          IF TG_TABLE_NAME = 'stored_file' THEN
            kept := EXISTS (SELECT 1 FROM document);
          ELSIF TG_TABLE_NAME IN ({", ".join(f"'{t}'" for t in KEPT_TABLES)}) THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_TABLE_NAME) INTO kept;
          ELSE
            kept := EXISTS (SELECT 1 FROM journal_post WHERE status IN ('finalized', 'dispatched'));
          END IF;
          IF kept THEN
            RAISE EXCEPTION '% holds what is kept: it cannot be truncated', TG_TABLE_NAME;
          END IF;
          RETURN NULL;
        END $$""")
    for table in TABLES:
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                      FOR EACH STATEMENT EXECUTE FUNCTION finality_truncate_guard()""")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS finality_truncate_guard()")
