"""Flask extensions, created unbound and initialised in create_app."""
from typing import TYPE_CHECKING, Any, cast

from flask import Flask
from flask_babel import Babel
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.model import Model as _FSAModel
from flask_wtf import CSRFProtect
from sqlalchemy import CursorResult, MetaData, event
from sqlalchemy.orm import DeclarativeBase, Session

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

# The base class of the models. It is db.Model, which mypy cannot take as a base class (an attribute of
# an instance, python/mypy#8603); to mypy it is what db.Model is made of: Flask-SQLAlchemy's Model and Base.
if TYPE_CHECKING:
    class Model(_FSAModel, Base):
        __abstract__ = True
else:
    Model = db.Model


class MigrateState:
    """What Flask-Migrate keeps in app.extensions["migrate"] (its _MigrateConfig: the db, the migrations'
    folder, the arguments for Alembic's context, and the Migrate object its functions call), made without
    importing Flask-Migrate: it imports Alembic (~11 MiB), which a web worker and the RQ worker never use.
    The Migrate object is made the first time a migration asks for it (flask db, flask_migrate.upgrade())."""

    def __init__(self, db: SQLAlchemy, directory: str, **configure_args: Any) -> None:
        self.db, self.directory, self.configure_args = db, directory, configure_args
        self._migrate: Any = None

    @property
    def metadata(self) -> MetaData:
        return self.db.metadata

    @property
    def migrate(self) -> Any:
        if self._migrate is None:
            from flask_migrate import Migrate  # noqa: PLC0415 - see the class

            self._migrate = Migrate(db=self.db, directory=self.directory, **self.configure_args)
        return self._migrate


def init_migrate(app: Flask, directory: str) -> None:
    """Flask-Migrate's init_app, less its import (MigrateState) and its `db` command (app.CommandsOnUse adds it)."""
    app.extensions["migrate"] = MigrateState(db, directory, compare_type=True, render_as_batch=True)


login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
babel = Babel()


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (row locks, ON CONFLICT from its dialect)."""
    return db.session.get_bind().dialect.name == "postgresql"


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """Per connection: check foreign keys (SQLite does only when asked); WAL, so the web app and
    the worker read while the other writes; NORMAL sync, which WAL keeps crash-safe."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_sqlite(app) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)


def session_in_transaction() -> Session:
    """The scoped session's Session with its transaction begun: state kept in its info (jobs to enqueue,
    file locks) then ends with that transaction, also on a rollback() before any SQL was sent."""
    session = db.session()
    if session.get_transaction() is None:
        session.begin()
    return session


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session holds. For a writer that knows what it changed: it expires
    (or sets as committed) those objects itself, and the rest stay as loaded, not read again. The archive's
    run of outcomes (each finished job expired one by one) and the client folder's log row use it."""
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def changed_rows(statement) -> int:
    """Run an UPDATE or DELETE in the session's transaction; how many rows it changed (a conditional
    UPDATE's row count says who won)."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount
