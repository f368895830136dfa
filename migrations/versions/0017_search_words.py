"""search: words anywhere in post titles, case numbers and titles, client names

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 20:00:00

Search matched only the start of a title or name ("spesialundervisning" did not find "Sakkunnig
vurdering spesialundervisning"). It now matches the start of any word, through a word index the
database keeps itself, so that every write (the services, a metadata correction's UPDATE, bulk
inserts) keeps it right without the application's help:

- SQLite: an FTS5 table per searched table, with external content (the words only, no copy of
  the text) kept by triggers on insert, delete and an update of the searched columns, tokenized
  by unicode61 without removing diacritics (æ, ø and å stay letters and fold case), with prefix
  indexes for two- and three-letter prefixes. 'rebuild' fills them from the existing rows.
- PostgreSQL: GIN indexes over to_tsvector('simple', ...) of the same columns (no stemming, no
  stop words); a prefix query ('word':*) uses them. An index fills itself when it is created.

A case is searched by its number and title together; the number's "/" is a word break
("2024/00012" has the words 2024 and 00012). Note for later migrations: a SQLite batch
operation that copies journal_post, case or client drops these triggers; create them again.
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

TOKENIZE = "unicode61 remove_diacritics 0"

# (words table, content table, searched columns)
SQLITE = [
    ("journal_post_words", "journal_post", ["title_lower"]),
    ("case_words", "case", ["number", "title_lower"]),
    ("client_words", "client", ["name_lower"]),
]

# (index, table, the document searched); search/service.py builds the same expressions.
POSTGRESQL = [
    ("ix_journal_post_words", "journal_post", "to_tsvector('simple', title_lower)"),
    ("ix_case_words", "case", "to_tsvector('simple', replace(number, '/', ' ') || ' ' || title_lower)"),
    ("ix_client_words", "client", "to_tsvector('simple', name_lower)"),
]


def _sqlite_upgrade():
    for words, table, columns in SQLITE:
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        op.execute(f"CREATE VIRTUAL TABLE {words} USING fts5({cols}, content='{table}', content_rowid='id', "
                   f"tokenize='{TOKENIZE}', prefix='2 3')")
        op.execute(f'CREATE TRIGGER {words}_ai AFTER INSERT ON "{table}" BEGIN '
                   f"INSERT INTO {words}(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute(f'CREATE TRIGGER {words}_ad AFTER DELETE ON "{table}" BEGIN '
                   f"INSERT INTO {words}({words}, rowid, {cols}) VALUES ('delete', old.id, {old}); END")
        op.execute(f'CREATE TRIGGER {words}_au AFTER UPDATE OF {cols} ON "{table}" BEGIN '
                   f"INSERT INTO {words}({words}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
                   f"INSERT INTO {words}(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute(f"INSERT INTO {words}({words}) VALUES ('rebuild')")


def _sqlite_downgrade():
    for words, _table, _columns in SQLITE:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {words}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {words}")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        for name, table, document in POSTGRESQL:
            op.execute(f'CREATE INDEX {name} ON "{table}" USING gin ({document})')


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_downgrade()
    elif dialect == "postgresql":
        for name, _table, _document in POSTGRESQL:
            op.execute(f"DROP INDEX IF EXISTS {name}")
