"""Recording a letter's expedition (the day it left us, and how) in the caller's transaction: the
step that dispatch (SvarUt confirmed it, or a person recorded paper) and finalization (a letter
registered after downtime as already sent) share. dispatch/expedition.py holds the rules around it."""
from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm.attributes import set_committed_value

from ..activity import service as activity
from ..archive import outbox
from ..extensions import db
from ..models import JournalPost, PostType, User
from .history import event

SVARUT = "svarut"
PAPER = "paper"

def expedite(post: JournalPost, on: date, how: str, actor: User | None = None) -> bool:
    """Record the post's expedition, once, in the caller's transaction; True if this call recorded it.

    One conditional UPDATE: a status polled twice, two recipients confirmed in one pass, or two
    processes at once record it once, and queue one archive update."""
    changed = cast(CursorResult[Any], db.session.execute(
        update(JournalPost).where(JournalPost.id == post.id, JournalPost.expedited_on.is_(None))
        .values(expedited_on=on, expedition=how).execution_options(synchronize_session=False)))
    if changed.rowcount != 1:
        return False
    set_committed_value(post, "expedited_on", on)
    set_committed_value(post, "expedition", how)
    event(post, actor, "expedited", expedition=how, on=on.isoformat())
    activity.record("post_expedited", actor=actor, actor_name=None if actor is not None else "dispatch",
                    object_type="journal_post", object_id=post.id,
                    after={"expedited_on": on.isoformat(), "expedition": how})
    outbox.post_expedited(post)
    return True


def downtime_paper_letter(post: JournalPost) -> bool:
    """A letter registered after downtime with its sent date went out on paper during the downtime."""
    return post.post_type == PostType.U and bool(post.registered_after_downtime) and post.sent_on is not None


def on_finalized(post: JournalPost, actor: User | None) -> bool:
    """At finalization: a letter registered after downtime as already sent is expedited on paper on its
    sent date, so the archive gets E with it. True if that happened."""
    if not downtime_paper_letter(post) or post.expedited_on is not None:
        return False
    assert post.sent_on is not None  # downtime_paper_letter checked it
    return expedite(post, post.sent_on, PAPER, actor)
