"""The leader's decision on a post held back from access at post registration.

A post registered with "hold back from access" waits, unfinalized, for a holder of `approve` (the
leader or the deputy). They see it with its page images and either release it (it is then finalized
and archived as any other, in the same transaction) or keep it held back with a reason. While it
waits, and once kept, nobody finalizes it. A kept post may be released later (the reasons to keep a
document back can lapse); a released post is finalized and cannot be kept again. Both outcomes are
in the activity log and the case history, and the case's handler is told.

waiting(actor) -> list[JournalPost]      held-back posts without a decision, oldest first (approve; [] otherwise)
kept(actor) -> list[JournalPost]         held-back posts kept held back, oldest first (approve; [] otherwise)
count(actor, decision=None) -> int       how many of those there are, without a limit
release(actor, post_id) -> JournalPost   decision "released"; finalizes it in the same transaction
keep(actor, post_id, reason) -> JournalPost   decision "kept", with the reason (required)
finalize_refusal(post) -> DomainError | None  why a held-back post may not be finalized yet
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, joinedload

from .. import form_tokens, validation
from ..activity import service as activity
from ..auth import scope
from ..auth.access import refused, require
from ..clock import utcnow
from ..errors import Conflict, DomainError, Invalid, raise_if
from ..extensions import db
from ..files import preview
from ..models import Case, JournalPost, PostStatus, User
from ..models.base import rare
from ..models.domain import LOCKED_STATUSES
from ..notify import link, notify
from ..transaction import transaction
from . import posts
from .history import event

RELEASED, KEPT = "released", "kept"
DECISIONS = (RELEASED, KEPT)
REASON_MAX = 500
# The form_tokens kind of a decision form: sent twice, it decides once.
TOKEN_KIND = "hold_decision"


def _held(actor: User, decision: str | None):
    """SQL conditions on JournalPost (joined to its case): held back, unfinalized, with this decision (None:
    none yet), in the actor's access scope."""
    same = JournalPost.hold_decision.is_(None) if decision is None else JournalPost.hold_decision == decision
    # rare(): nearly no post is held back, which SQLite's planner does not know without it (it walked
    # every post by registration instead of the few held back by ix_journal_post_held_back).
    return (rare(JournalPost.held_back.is_(True)), same, JournalPost.status.not_in(LOCKED_STATUSES),
            scope.case_clause(actor))


def _listed(actor: User, decision: str | None, limit: int) -> list[JournalPost]:
    if not actor.can("approve"):
        return []
    query = (select(JournalPost).join(JournalPost.case).where(*_held(actor, decision))
             .options(contains_eager(JournalPost.case).joinedload(Case.client),
                      contains_eager(JournalPost.case).joinedload(Case.handler),
                      joinedload(JournalPost.hold_decided_by))
             .order_by(JournalPost.registered_at, JournalPost.id).limit(limit))
    return list(db.session.scalars(query))


def waiting(actor: User, limit: int = 200) -> list[JournalPost]:
    """Held-back posts that wait for a decision, oldest registration first (only for holders of approve,
    and only the posts their access scope lets them open)."""
    return _listed(actor, None, limit)


def kept(actor: User, limit: int = 200) -> list[JournalPost]:
    """Held-back posts a leader decided to keep held back (unfinalized; they can still be released),
    oldest registration first; for holders of approve, within their access scope."""
    return _listed(actor, KEPT, limit)


def count(actor: User, decision: str | None = None) -> int:
    """How many posts waiting() (decision None) or kept() (KEPT) would list without a limit."""
    if not actor.can("approve"):
        return 0
    return db.session.scalar(select(func.count(JournalPost.id)).join(JournalPost.case)
                             .where(*_held(actor, decision))) or 0


def finalize_refusal(post: JournalPost) -> DomainError | None:
    """Why a held-back post may not be finalized yet (None: it is not held back, or the leader released
    it). The rule sits with finalize in posts.py, which every path that finalizes goes through."""
    return posts.held_back_refusal(post)


def _decision_refusal(actor: User, post: JournalPost) -> DomainError | None:
    refusal = refused(actor, "approve", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if not post.held_back:
        return Conflict(_l("The post is not held back from access: there is nothing to decide."))
    if post.hold_decision == RELEASED or post.locked:
        return Conflict(_l("The post is released and finalized already."))
    if post.status != PostStatus.DRAFT:
        return Conflict(_l("The post is not a draft any more: there is nothing to decide."))
    return None


def release_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not release the post now (None: they may, once nothing is missing)."""
    return _decision_refusal(actor, post)


def keep_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not keep the post held back now (None: they may)."""
    refusal = _decision_refusal(actor, post)
    if refusal is not None:
        return refusal
    if post.hold_decision == KEPT:
        return Conflict(_l("The post is kept held back already. It can still be released."))
    return None


def decidable(actor: User, post_id: int, lock: bool = False) -> JournalPost:
    """A post for the decision page: approve first (403 otherwise), then the access scope (404).
    lock: read it again with its row locked (PostgreSQL), for a decision on what it is now."""
    require(actor, "approve", object_type="journal_post", object_id=post_id)
    post = scope.post(actor, post_id)
    if lock:
        db.session.refresh(post, with_for_update=True)
    return post


def open_for_decision(actor: User, post_id: int) -> JournalPost:
    """The decision page opens the post: logged as any opening of a post."""
    decidable(actor, post_id)
    return posts.open_post(actor, post_id)


def _decide(actor: User, post: JournalPost, decision: str, guard, **values) -> str | None:
    """The decision as one conditional UPDATE on the decision read: of two leaders at once, one decides
    and the other gets the guard's answer on the post as it is now, or "changed meanwhile"."""
    previous = post.hold_decision
    same = JournalPost.hold_decision.is_(None) if previous is None else JournalPost.hold_decision == previous
    posts.decide(post, (JournalPost.held_back.is_(True), JournalPost.status == PostStatus.DRAFT, same), guard,
                 hold_decision=decision, hold_decided_by_id=actor.id, hold_decided_at=utcnow(), **values)
    return previous


def seen_version(post: JournalPost) -> str:
    """What the decision page shows of the post (its metadata and its documents' files), as a short digest:
    the handler may still edit the draft, and a leader releases only what they have seen."""
    shown = [post.title, str(post.document_date), post.legal_basis, *(c.name for c in post.correspondents),
             *(f"{d.role}:{d.sha256}" for d in post.documents)]
    return hashlib.sha256("\n".join(shown).encode()).hexdigest()[:20]


def release(actor: User, post_id: int, form_token: str | None = None, seen: str | None = None) -> JournalPost:
    """Release a held-back post: it is finalized and archived as any other, in this one transaction.
    A post that lacks what finalizing needs is refused with what is missing, and nothing changes.
    seen: seen_version() of the post as the decision page showed it (required: a leader releases only
    what they have seen); a post changed since is refused."""
    with transaction():
        post = decidable(actor, post_id, lock=True)
        # The content compared with what the page showed is the content finalized: an edit committed after
        # this read (SQLite takes no lock until the first write) refuses the release.
        content = post.content_version

        def make() -> JournalPost:
            raise_if(release_refusal(actor, post))
            if not seen:
                raise Invalid(_l("It is not known what the page showed you of the post. Open the decision page "
                                 "again and release from there."))
            if seen != seen_version(post):
                raise posts.ChangedMeanwhile()
            missing = posts.missing_for_finalize(post)
            if missing:
                raise Invalid(_l("The post cannot be finalized yet. Missing: %(items)s.", items=", ".join(missing)))
            previous = _decide(actor, post, RELEASED, lambda p: release_refusal(actor, p))
            event(post, actor, "hold_released", previous=previous)
            activity.record("post_hold_released", actor=actor, object_type="journal_post", object_id=post.id,
                            before={"hold_decision": previous, "hold_reason": post.hold_reason or None},
                            after={"hold_decision": RELEASED})
            posts.finalize_post(actor, post, content)  # the archive job comes with it
            _tell_handler(actor, post, _l("%(name)s released %(number)s from hold back; it is finalized: %(title)s",
                                          name=actor.full_name, number=post.number, title=post.title))
            return post

        return form_tokens.once(actor, form_token, TOKEN_KIND, make)


def keep(actor: User, post_id: int, reason: str, form_token: str | None = None) -> JournalPost:
    """Keep a held-back post held back, with the reason (required): it stays unfinalized and leaves
    the waiting list."""
    with transaction():
        post = decidable(actor, post_id)

        def make() -> JournalPost:
            raise_if(keep_refusal(actor, post))
            text = validation.required_text(reason, "reason", REASON_MAX)
            previous = _decide(actor, post, KEPT, lambda p: keep_refusal(actor, p), hold_reason=text)
            event(post, actor, "hold_kept", text)
            activity.record("post_hold_kept", actor=actor, object_type="journal_post", object_id=post.id,
                            before={"hold_decision": previous}, after={"hold_decision": KEPT}, detail=text)
            _tell_handler(actor, post, _l("%(name)s keeps %(number)s held back from access: %(reason)s",
                                          name=actor.full_name, number=post.number, reason=text[:200]))
            return post

        return form_tokens.once(actor, form_token, TOKEN_KIND, make)


def _tell_handler(actor: User, post: JournalPost, message) -> None:
    handler = post.case.handler
    if handler is not None and handler.id != actor.id and handler.active:
        notify(handler, message, link("cases.post", post_id=post.id))


def document_page(actor: User, document_id: int, page: int) -> Path | None:
    """The image of one page of a document the actor may see (None: no such page, or no preview).

    Every page shown is logged as an opening of the document, with the page: the images are the
    document's content, and the decision page loads them lazily, so the rows say which pages were seen."""
    doc = scope.document(actor, document_id)
    if page < 1 or page > (doc.file.page_count or 0):
        return None
    image = preview.page_image(doc.sha256, page)
    if image is not None:
        activity.record("document_opened", actor=actor, object_type="journal_post", object_id=doc.post_id,
                        detail=f"document {doc.id} page {page}")
        db.session.commit()
    return image

