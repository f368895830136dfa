"""A create form sent twice makes one object (docs/decisions.md, "One effect per action").

Each create form carries a hidden token made when it is rendered (formtools.OnceForm). The create
service runs its work through once(): the token's row is inserted first, in the action's
transaction, and the unique token decides which sending makes the object. A second sending, at
once or later, makes nothing and raises AlreadyMade, which names the object the first one made;
the view leads the user there.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .errors import Conflict
from .extensions import db
from .models import FormToken, User


class Made(Protocol):
    id: int


T = TypeVar("T", bound=Made)


class AlreadyMade(Conflict):
    """The form was sent before: `kind` and `object_id` name what that sending made."""

    def __init__(self, kind: str, object_id: int):
        super().__init__(_l("This form was sent already. Here is what it made."))
        self.kind = kind
        self.object_id = object_id


def _made_by(token: str, kind: str) -> Conflict:
    row = db.session.scalar(select(FormToken).where(FormToken.token == token))
    if row is None or row.kind != kind or row.object_id is None:
        return Conflict(_l("The form was sent twice at once. Look again before you send it once more."))
    return AlreadyMade(kind, row.object_id)


def once(actor: User, token: str | None, kind: str, make: Callable[[], T]) -> T:
    """make() in the caller's transaction, unless this form token made something already.

    The token's row goes in first, so a sending at the same moment waits for it (PostgreSQL), or for
    the one writer (SQLite), and then meets the unique token. Without a token (the CLI, a script),
    make() simply runs."""
    token = (token or "").strip()[:64]
    if not token:
        return make()
    found = db.session.scalar(select(FormToken.id).where(FormToken.token == token))
    if found is not None:
        raise _made_by(token, kind)
    row = FormToken(token=token, kind=kind, user_id=actor.id)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the same form, sent at the same moment, was first
        db.session.rollback()
        raise _made_by(token, kind) from None
    made = make()
    db.session.flush()
    row.object_id = made.id
    return made
