"""letter templates with kept versions, and letters written in the app

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 17:20:00

A letter is the text of one journal post; once that post is finalized the letter can never change,
enforced here by triggers as for the post's documents. A template version is never changed or
deleted. The templates the app ships are added by the app itself (letters/shipped.py), not here.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

LOCKED = "('finalized', 'dispatched')"
KINDS = sa.Enum('letter', 'expert_assessment', 'statement', 'invitation', 'note', name='templatekind',
                native_enum=False, length=30)
POST_TYPES = sa.Enum('I', 'U', 'N', 'X', name='posttype', native_enum=False, length=30)


def upgrade():
    op.create_table(
        'document_template',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', KINDS, nullable=False),
        sa.Column('post_type', POST_TYPES, nullable=False),
        sa.Column('default_title', sa.String(length=300), nullable=False),
        sa.Column('legal_basis', sa.String(length=200), nullable=False),
        sa.Column('show_national_id', sa.Boolean(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('retired_by_id', sa.Integer(), nullable=True),
        sa.Column('shipped_key', sa.String(length=60), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['retired_by_id'], ['user.id'], name=op.f('fk_document_template_retired_by_id_user')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_document_template_created_by_id_user')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_document_template_updated_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document_template')),
        sa.UniqueConstraint('shipped_key', name=op.f('uq_document_template_shipped_key')),
    )
    op.create_table(
        'document_template_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', KINDS, nullable=False),
        sa.Column('post_type', POST_TYPES, nullable=False),
        sa.Column('default_title', sa.String(length=300), nullable=False),
        sa.Column('legal_basis', sa.String(length=200), nullable=False),
        sa.Column('show_national_id', sa.Boolean(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['template_id'], ['document_template.id'],
                                name=op.f('fk_document_template_version_template_id_document_template')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'],
                                name=op.f('fk_document_template_version_created_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_document_template_version')),
        sa.UniqueConstraint('template_id', 'number', name=op.f('uq_document_template_version_template_id')),
    )
    op.create_index(op.f('ix_document_template_version_template_id'), 'document_template_version', ['template_id'])
    op.create_table(
        'letter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('post_id', sa.Integer(), nullable=False),
        sa.Column('template_version_id', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('rendered_version', sa.Integer(), nullable=True),
        sa.Column('rendered_sha256', sa.String(length=64), nullable=True),
        sa.Column('rendered_inputs', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['post_id'], ['journal_post.id'], name=op.f('fk_letter_post_id_journal_post'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['template_version_id'], ['document_template_version.id'],
                                name=op.f('fk_letter_template_version_id_document_template_version')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id'], name=op.f('fk_letter_updated_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_letter')),
        sa.UniqueConstraint('post_id', name=op.f('uq_letter_post_id')),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    elif op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()


def _sqlite_triggers():
    abort = "BEGIN SELECT RAISE(ABORT, '{}'); END"
    locked_post = "(SELECT status FROM journal_post WHERE id = {ref}.post_id) IN " + LOCKED
    for verb, refs in (("INSERT", ["NEW"]), ("UPDATE", ["NEW", "OLD"]), ("DELETE", ["OLD"])):
        cond = " OR ".join(locked_post.format(ref=r) for r in refs)
        op.execute(f"""CREATE TRIGGER letter_locked_{verb.lower()} BEFORE {verb} ON letter
            WHEN {cond} {abort.format('the letter of a finalized journal post never changes')}""")
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"""CREATE TRIGGER document_template_version_no_{verb.lower()}
            BEFORE {verb} ON document_template_version {abort.format('template versions are kept')}""")


def _postgresql_triggers():
    op.execute(f"""
        CREATE FUNCTION letter_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids integer[];
        BEGIN
          IF TG_OP = 'INSERT' THEN ids := ARRAY[NEW.post_id];
          ELSIF TG_OP = 'DELETE' THEN ids := ARRAY[OLD.post_id];
          ELSE ids := ARRAY[NEW.post_id, OLD.post_id]; END IF;
          IF EXISTS (SELECT 1 FROM journal_post p WHERE p.id = ANY(ids) AND p.status IN {LOCKED}) THEN
            RAISE EXCEPTION 'the letter of a finalized journal post never changes';
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$""")
    op.execute("""CREATE TRIGGER letter_guard BEFORE INSERT OR UPDATE OR DELETE ON letter
                  FOR EACH ROW EXECUTE FUNCTION letter_guard()""")
    op.execute("""
        CREATE FUNCTION document_template_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'template versions are kept';
        END $$""")
    op.execute("""CREATE TRIGGER document_template_version_guard BEFORE UPDATE OR DELETE ON document_template_version
                  FOR EACH ROW EXECUTE FUNCTION document_template_version_guard()""")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("letter_locked_insert", "letter_locked_update", "letter_locked_delete",
                     "document_template_version_no_update", "document_template_version_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS letter_guard ON letter")
        op.execute("DROP TRIGGER IF EXISTS document_template_version_guard ON document_template_version")
        op.execute("DROP FUNCTION IF EXISTS letter_guard()")
        op.execute("DROP FUNCTION IF EXISTS document_template_version_guard()")
    op.drop_table('letter')
    op.drop_index(op.f('ix_document_template_version_template_id'), 'document_template_version')
    op.drop_table('document_template_version')
    op.drop_table('document_template')
