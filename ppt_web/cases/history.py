"""A journal post's history: its steps (sent to approval, approved, signed, dispatched, expedited ...)."""
from __future__ import annotations

from ..clock import utcnow
from ..extensions import db
from ..models import JournalPost, PostEvent, User


def event(post: JournalPost, actor: User | None, kind: str, comment: str = "", to_user: User | None = None,
          **detail) -> PostEvent:
    """A step in the post's history (sent to approval, approved, signed, dispatched ...), in the caller's
    transaction."""
    row = PostEvent(post=post, actor=actor, kind=kind, comment=comment, to_user=to_user, detail=detail, at=utcnow())
    db.session.add(row)
    return row
