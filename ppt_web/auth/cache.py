"""What every request would otherwise read from the database again: who is signed in, and the header's counts.

Both are kept per process for a short while, and both are dropped the moment something they were read from
changes, in this process or in any other one that shares the instance folder (web workers, the RQ worker,
the CLI): a transaction that changes the users' tables, or the tables the counts come from, touches a
change stamp file in the instance folder when it commits (one byte appended). Each request looks at the
stamp with one os.stat; a cached entry is used only while the stamp is the one it was read under, and for
at most its lifetime (a change made past the app, with psql say, is seen within that time).
See docs/decisions.md, "Speed: the request path".
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached, scoped_session

from ..models import User

log = logging.getLogger(__name__)

# Changes to these tables change who is signed in or what they may do.
AUTH_TABLES = frozenset({"user", "user_session", "role", "permission", "user_role", "role_permission",
                         "access_group", "group_member", "group_role"})
# Changes to these change a header count (notifications, inbox, approvals, dispatch failures, archive alerts:
# web.header_context), besides the users' tables (a team's coordinator, a handler's cases).
COUNT_TABLES = AUTH_TABLES | frozenset({"notification", "inbox_item", "journal_post", "dispatch", "archive_job",
                                        "case", "client", "setting"})
USER_SECONDS = 30.0  # the longest a session's user is kept (a change made past the app is seen within it)
COUNT_SECONDS = 5.0  # the longest the header's counts are kept (what changes with the clock alone)
STAMP_LIMIT = 4096  # bytes: a longer stamp file is replaced by a new one (a new inode, which is a change too)
MAX_ENTRIES = 5000  # sessions (or users) kept per process; past it the cache starts again
LAYOUT_ENTRIES = 1000  # headers' HTML kept per process (about 4 kB each); past it the cache starts again
# The user's columns a request reads (the password hash is not kept: the one page that checks it loads it).
USER_COLUMNS = tuple(attr.key for attr in inspect(User).column_attrs if attr.key != "password_hash")


class Stamp:
    """A file whose inode, size and time change with every committed change of a kind, in any process."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def touch(self) -> None:
        try:
            if self.path.stat().st_size >= STAMP_LIMIT:
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(b".")
                tmp.replace(self.path)
                return
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)


@dataclass(frozen=True)
class SignedIn:
    """What one session's request needs of its user, as plain values (no ORM object is shared)."""

    stamp: tuple[int, int, int] | None
    read_at: float  # time.monotonic()
    session_created_at: datetime
    values: tuple[tuple[str, Any], ...]  # the user's columns
    permissions: frozenset[str]
    role_names: tuple[str, ...]  # the user's own roles, as the header lists them


class Caches:
    """The per-process caches of one app (tests make many apps in one process)."""

    def __init__(self, app: Flask):
        folder = Path(app.instance_path) / "stamps"
        self.auth = Stamp(folder / "auth")
        self.counts = Stamp(folder / "counts")
        self.user_seconds = USER_SECONDS
        self.count_seconds = COUNT_SECONDS
        self.sessions: dict[str, SignedIn] = {}
        self.header: dict[tuple[int, frozenset[str]], tuple[Any, float, dict]] = {}
        self.menus: dict[frozenset[str], tuple[str, ...]] = {}
        self.layout: dict[tuple, Any] = {}  # the header's HTML by everything it shows (web.layout_header)
        self.csrf_tokens: dict[str, str] = {}  # a session's CSRF token, signed once (web.csrf_token)
        self.layout_on = True  # False: both of these made again on every page (bench/request_path.py --ab)
        self.lock = threading.Lock()

    def changed(self, auth: bool = True) -> None:
        """A committed change to the tables the counts (and, with auth, the users) are read from: this
        process's entries dropped, then the stamps touched for every other process. Called after the commit,
        so it never raises: a stamp that cannot be written (a full disk, a stamp file of another owner) is
        logged, and the other processes see the change within their entries' lifetime, as one made past the
        app."""
        if auth:
            self.sessions.clear()
        self.header.clear()
        self.layout.clear()  # its keys hold the counts: what was kept under the old ones is not shown again
        for stamp in (self.auth, self.counts) if auth else (self.counts,):
            try:
                stamp.touch()
            except OSError as exc:
                log.error("could not mark a change in %s (%s): other processes may show what was before for "
                          "up to %d s", stamp.path, exc, int(self.user_seconds if auth else self.count_seconds))

    # -- who is signed in --------------------------------------------------------------------------------

    def signed_in(self, token: str) -> SignedIn | None:
        entry = self.sessions.get(token)
        if entry is None:
            return None
        if entry.stamp != self.auth.read() or time.monotonic() - entry.read_at > self.user_seconds:
            self.sessions.pop(token, None)
            return None
        return entry

    def keep_signed_in(self, token: str, stamp, user: User, session_created_at: datetime) -> None:
        entry = SignedIn(stamp=stamp, read_at=time.monotonic(), session_created_at=session_created_at,
                         values=tuple((key, user.__dict__[key]) for key in USER_COLUMNS if key in user.__dict__),
                         permissions=user.permission_codes(),
                         role_names=tuple(role.name for role in user.roles))
        if len(entry.values) != len(USER_COLUMNS):
            return  # a column not loaded: not worth a query to keep
        with self.lock:
            if len(self.sessions) >= MAX_ENTRIES:
                self.sessions.clear()
            self.sessions[token] = entry

    def forget(self, token: str | None) -> None:
        if token:
            self.sessions.pop(token, None)

    # -- the header's counts --------------------------------------------------------------------------

    def header_counts(self, key: tuple[int, frozenset[str]]) -> dict | None:
        kept = self.header.get(key)
        if kept is None:
            return None
        stamp, read_at, counts = kept
        if stamp != self.counts.read() or time.monotonic() - read_at > self.count_seconds:
            self.header.pop(key, None)
            return None
        return counts

    def keep_counts(self, key: tuple[int, frozenset[str]], stamp, counts: dict) -> None:
        with self.lock:
            if len(self.header) >= MAX_ENTRIES:
                self.header.clear()
            self.header[key] = (stamp, time.monotonic(), counts)

    # -- the header's HTML and the signed CSRF tokens -----------------------------------------------------

    def keep_layout(self, key: tuple, html: Any) -> None:
        with self.lock:
            if len(self.layout) >= LAYOUT_ENTRIES:
                self.layout.clear()
            self.layout[key] = html

    def keep_csrf_token(self, raw: str, signed: str) -> None:
        with self.lock:
            if len(self.csrf_tokens) >= MAX_ENTRIES:
                self.csrf_tokens.clear()
            self.csrf_tokens[raw] = signed


def caches() -> Caches:
    return current_app.extensions["ppt_caches"]


_USER_MAPPER = inspect(User)
# Each kept session's user as a detached object, made once and never attached to a session (only read).
_DETACHED: dict[int, tuple[SignedIn, User, Any]] = {}


def user_from(entry: SignedIn, session: Session | scoped_session) -> User:
    """A User for this request's session made from the kept values, without a query: persistent in the
    session as if it had been loaded there (a change to it is saved as usual); its roles and teams load
    when something asks for them, and so does the password hash. If the session already holds this user,
    that object is used.

    session.merge(load=False) copies a detached object, made once per kept entry and never changed, into a
    new object of this session: less than making the object and session.add on every request (no cascade
    over the relationships, the attributes not kept expired once)."""
    kept = _DETACHED.get(id(entry))
    if kept is None or kept[0] is not entry:
        source = _USER_MAPPER.class_manager.new_instance()
        source.__dict__.update(entry.values)
        make_transient_to_detached(source)
        if len(_DETACHED) >= MAX_ENTRIES:
            _DETACHED.clear()
        _DETACHED[id(entry)] = kept = (entry, source, inspect(source).key)
    present = session.identity_map.get(kept[2])
    if present is not None:
        return present
    user = session.merge(kept[1], load=False)
    user.__dict__["_permission_cache"] = entry.permissions
    user.__dict__["_ppt_role_names"] = entry.role_names
    return user


def role_names(user: User) -> list[str]:
    """The names of the user's own roles, for the header: from the kept values unless the roles are loaded
    (or changed) in this request."""
    kept = user.__dict__.get("_ppt_role_names")
    if kept is not None and "roles" not in user.__dict__:
        return list(kept)
    return [role.name for role in user.roles]


# -- the change stamps: touched when a transaction that changed their tables commits ---------------------

def _tables_of(objects) -> set[str]:
    return {inspect(obj).mapper.local_table.name for obj in objects}


def _mark(session: Session, tables: set[str]) -> None:
    if tables & COUNT_TABLES:
        session.info["ppt_counts_changed"] = True
        if tables & AUTH_TABLES:
            session.info["ppt_auth_changed"] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    tables = _tables_of(session.dirty) | _tables_of(session.deleted)
    new = _tables_of(session.new)
    new.discard("user_session")  # a new sign-in changes no one's cached session
    _mark(session, tables | new)


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    """UPDATE, DELETE and INSERT statements run through the session (not seen by the flush)."""
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        name = getattr(table, "name", None)
        if name:
            _mark(state.session, {name})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    auth = session.info.pop("ppt_auth_changed", False)
    counts = session.info.pop("ppt_counts_changed", False)
    if auth:  # a user of this session whose roles changed shows them as they are now
        for obj in list(session.identity_map.values()):
            if isinstance(obj, User):
                obj.__dict__.pop("_ppt_role_names", None)
    if not (auth or counts) or not has_app_context():
        return
    kept = current_app.extensions.get("ppt_caches")
    if kept is None:
        return
    kept.changed(auth=auth)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("ppt_auth_changed", None)
    session.info.pop("ppt_counts_changed", None)


def init_app(app: Flask) -> None:
    app.extensions["ppt_caches"] = Caches(app)
