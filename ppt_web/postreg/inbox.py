"""Inbox steps that other areas compose into their own transactions (a deleted post's mail goes back
to the inbox). Kept below both post registration and cases, so neither imports the other's service."""
from __future__ import annotations

from sqlalchemy import select

from ..activity import service as activity
from ..clock import utcnow
from ..extensions import db
from ..models import InboxItem, InboxStatus, JournalPost, PaperOriginal, User


def log_item(action: str, actor: User, item: InboxItem, detail: str = "", **after) -> None:
    """An activity-log row about an inbox item, with its status after the change."""
    activity.record(action, actor=actor, object_type="inbox_item", object_id=item.id,
                    after={"status": item.status.value, **after}, detail=detail)


def return_to_inbox(actor: User, post: JournalPost) -> None:
    """A transferred post is being deleted as misregistered (a held-back draft): its mail waits again.

    The item keeps its file and checklist and becomes "in progress" by the actor; its paper original's
    record stays with it, without a document until the mail is filed again (the paper is still in the
    archive room, or its destruction is recorded). Joins the caller's transaction.
    """
    for item in db.session.scalars(select(InboxItem).where(InboxItem.post_id == post.id)):
        for original in db.session.scalars(select(PaperOriginal).where(PaperOriginal.item_id == item.id)):
            original.document_id = None
        item.post_id = item.document_id = item.transferred_by_id = item.transferred_at = None
        item.status = InboxStatus.CHECKED if item.all_checked else InboxStatus.IN_PROGRESS
        item.claimed_by_id, item.claimed_at = actor.id, utcnow()
        if post.held_back and post.hold_decision != "released":
            item.hold_back_required = True
        log_item("inbox_returned", actor, item, post=post.id)
    db.session.flush()

