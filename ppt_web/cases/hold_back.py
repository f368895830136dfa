"""The leader's decision on a post held back from access at post registration.

A post registered with "hold back from access" waits, unfinalized, for a holder of `approve` (the
leader or the deputy). They see it with its page images and either release it (it may then be
finalized and archived as any other) or keep it held back with a reason. While it waits, nobody
finalizes it. Both outcomes are in the activity log and the case history.

waiting(actor) -> list[JournalPost]      held-back posts without a decision, oldest first (approve; [] otherwise)
release(actor, post_id) -> JournalPost   decision "released"; finalizes it in the same transaction
keep(actor, post_id, reason) -> JournalPost   decision "kept", with the reason (required)
finalize_refusal(post) -> DomainError | None  why a held-back post may not be finalized yet
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Case, JournalPost, User
from ..models.domain import LOCKED_STATUSES

DECISIONS = ("released", "kept")


def waiting(actor: User, limit: int = 200) -> list[JournalPost]:
    """Held-back posts that wait for a decision, oldest registration first (only for holders of approve)."""
    if not actor.can("approve"):
        return []
    query = (select(JournalPost)
             .where(JournalPost.held_back.is_(True), JournalPost.hold_decision.is_(None),
                    JournalPost.status.not_in(LOCKED_STATUSES))
             .options(joinedload(JournalPost.case).joinedload(Case.client))
             .order_by(JournalPost.registered_at, JournalPost.id).limit(limit))
    return list(db.session.scalars(query))
