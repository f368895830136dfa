"""finality guards: a finalized post's approval, signatures and history never change

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 16:00:00

Migration 0002 keeps a finalized (or dispatched) journal post from changing, even for raw SQL, but the
approval columns (0005) and the post's signatures and history (post_signature, post_event) were left
open. The app writes them only before a post is finalized, or appends to them after:

- journal_post: approver_id, approval_requested_by_id and approval_requested_at are set when a draft is
  sent to approval (approver_id cleared again when it is returned), approved_by_id and approved_at when
  it is approved, which finalizes it in the same transaction. Once finalized or dispatched they never
  change. A trigger of its own, beside 0002's, so that 0002's triggers stay as they are.
- post_signature: a signature is added while the post is a draft (the handler signs) or approved (the
  approver signs in the approval's transaction), and never changed. No insert, update or delete for a
  finalized or dispatched post; no update ever. The rows of a draft go with it when it is deleted (the
  foreign key's ON DELETE CASCADE).
- post_event: the history is appended to after finalizing as well (dispatch, expedition), so inserts
  stay open; an event is never updated, and never deleted while its post is finalized or dispatched.
  Deleting a misregistered draft deletes its events first (the ORM's cascade), which stays allowed.
"""
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

LOCKED = "('finalized', 'dispatched')"
APPROVAL = ["approver_id", "approval_requested_by_id", "approval_requested_at", "approved_by_id", "approved_at"]
SQLITE_TRIGGERS = ["journal_post_locked_approval", "post_signature_no_update", "post_signature_locked_insert",
                   "post_signature_locked_delete", "post_event_no_update", "post_event_locked_delete"]
POSTGRESQL_TRIGGERS = [("journal_post", "journal_post_approval_guard"), ("post_signature", "post_signature_guard"),
                       ("post_event", "post_event_guard")]


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    elif op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()


def _sqlite_triggers():
    abort = "BEGIN SELECT RAISE(ABORT, '{}'); END"
    locked_post = "(SELECT status FROM journal_post WHERE id = {ref}.post_id) IN " + LOCKED
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in APPROVAL)
    statements = [
        # UPDATE OF: an UPDATE that sets none of these columns cannot change them, and skips the check.
        f"""CREATE TRIGGER journal_post_locked_approval BEFORE UPDATE OF {', '.join(APPROVAL)} ON journal_post
            WHEN OLD.status IN {LOCKED} AND ({changed})
            {abort.format('journal post is finalized')}""",
        f"""CREATE TRIGGER post_signature_no_update BEFORE UPDATE ON post_signature
            {abort.format('signatures are kept')}""",
        f"""CREATE TRIGGER post_signature_locked_insert BEFORE INSERT ON post_signature
            WHEN {locked_post.format(ref='NEW')}
            {abort.format('signatures of a finalized journal post never change')}""",
        f"""CREATE TRIGGER post_signature_locked_delete BEFORE DELETE ON post_signature
            WHEN {locked_post.format(ref='OLD')}
            {abort.format('signatures of a finalized journal post never change')}""",
        f"""CREATE TRIGGER post_event_no_update BEFORE UPDATE ON post_event
            {abort.format('post events are kept')}""",
        f"""CREATE TRIGGER post_event_locked_delete BEFORE DELETE ON post_event
            WHEN {locked_post.format(ref='OLD')}
            {abort.format('post events are kept')}""",
    ]
    for statement in statements:
        op.execute(statement)


def _postgresql_triggers():
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in APPROVAL)
    op.execute(f"""
        CREATE FUNCTION journal_post_approval_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.status IN {LOCKED} AND ({changed}) THEN
            RAISE EXCEPTION 'journal post is finalized';
          END IF;
          RETURN NEW;
        END $$""")
    # UPDATE OF: an UPDATE that sets none of these columns cannot change them, and skips the check.
    op.execute(f"""CREATE TRIGGER journal_post_approval_guard BEFORE UPDATE OF {', '.join(APPROVAL)} ON journal_post
                  FOR EACH ROW EXECUTE FUNCTION journal_post_approval_guard()""")
    op.execute(f"""
        CREATE FUNCTION post_signature_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE post integer;
        BEGIN
          IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION 'signatures are kept'; END IF;
          IF TG_OP = 'INSERT' THEN post := NEW.post_id; ELSE post := OLD.post_id; END IF;
          IF EXISTS (SELECT 1 FROM journal_post p WHERE p.id = post AND p.status IN {LOCKED}) THEN
            RAISE EXCEPTION 'signatures of a finalized journal post never change';
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$""")
    op.execute("""CREATE TRIGGER post_signature_guard BEFORE INSERT OR UPDATE OR DELETE ON post_signature
                  FOR EACH ROW EXECUTE FUNCTION post_signature_guard()""")
    op.execute(f"""
        CREATE FUNCTION post_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' OR EXISTS (SELECT 1 FROM journal_post p WHERE p.id = OLD.post_id
                                         AND p.status IN {LOCKED}) THEN
            RAISE EXCEPTION 'post events are kept';
          END IF;
          RETURN OLD;
        END $$""")
    op.execute("""CREATE TRIGGER post_event_guard BEFORE UPDATE OR DELETE ON post_event
                  FOR EACH ROW EXECUTE FUNCTION post_event_guard()""")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif op.get_bind().dialect.name == "postgresql":
        for table, name in POSTGRESQL_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for _, name in POSTGRESQL_TRIGGERS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
