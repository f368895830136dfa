"""Approval of outgoing posts and expert assessments, and e-signing (docs/decisions.md, "Approval and signing").

A handler sends a complete draft to a named approver (a user with `approve`): the post is then
locked for the handler. The approver approves, which finalizes it (immutable, archived), or
returns it with a comment (back to draft). Every step is a PostEvent: who, when, the comment.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select

from .. import runtime_settings, validation
from ..activity import service as activity
from ..auth import scope
from ..auth.access import refused
from ..clock import utcnow
from ..errors import Conflict, DomainError, Forbidden, Invalid, raise_if
from ..extensions import db
from ..models import ActivityLog, Case, JournalPost, PostStatus, PostType, User
from ..models.letters import Letter
from ..notify import link, notify
from ..transaction import transaction
from . import posts
from .esign import sign_for_approver
from .posts import event


def coordinates(user: User, post: JournalPost) -> bool:
    """A team coordinator approves posts in their access group's cases as if holding approve."""
    group = post.case.access_group
    return group is not None and group.coordinator_id == user.id


def can_approve(user: User, post: JournalPost) -> bool:
    return user.active and (user.can("approve") or coordinates(user, post))


def approvers(post: JournalPost | None = None) -> list[User]:
    """Who can be asked: leader and deputy (approve), and the coordinator of the case's team; for a post,
    not those who wrote it (writers), who could neither approve nor return it."""
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.full_name))
    wrote = writers(post) if post is not None else set()
    return [u for u in users if (u.can("approve") or (post is not None and coordinates(u, post)))
            and u.id not in wrote]


# What makes someone a writer of a post, in the activity log (each writer's first save of a run of saves is
# logged; quiet saves after it are not, but the first says who).
WRITING = ("letter_created", "letter_saved", "post_updated", "post_document_removed")


def writers(post: JournalPost) -> set[int]:
    """The users who wrote the post: who registered it, who made or saved its letter's text, who edited it
    (its title, recipients, documents). Nobody approves or returns a post they wrote."""
    logged = db.session.scalars(select(ActivityLog.actor_id).where(
        ActivityLog.object_type == "journal_post", ActivityLog.object_id == str(post.id),
        ActivityLog.action.in_(WRITING), ActivityLog.actor_id.is_not(None)).distinct())
    last_saved = db.session.scalar(select(Letter.updated_by_id).where(Letter.post_id == post.id))
    return {post.created_by_id, *logged} | ({last_saved} if last_saved is not None else set())


def _conditional(post: JournalPost, allowed: tuple[PostStatus, ...],
                 guard: Callable[[JournalPost], DomainError | None], seen: int | None = None, **values) -> None:
    """One conditional UPDATE: two people acting on the same post at once, one wins; the other gets
    the guard's answer on the post as it is now ("not waiting for approval", ...). seen: posts.decide's."""
    posts.decide(post, (JournalPost.status.in_(allowed),), guard, seen=seen, **values)


def request_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not send the post to approval (None: they may, once nothing is missing)."""
    refusal = refused(actor, "journal", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.status != PostStatus.DRAFT:
        return Conflict(_l("Only a draft can be sent to approval."))
    if post.post_type != PostType.U:
        return Conflict(_l("Only an outgoing (U) post is sent to approval."))
    if posts.signed_letter(post):  # returned, the handler could neither change nor delete it: a draft for ever
        return Conflict(_l("The letter is signed already and can no longer change: finalize it, or write a "
                           "new letter."))
    return None


def send_for_approval(actor: User, post_id: int, approver_id: int | None, comment: str = "") -> JournalPost:
    """Lock a complete draft and ask a named leader, deputy or team coordinator to approve it."""
    from ..letters.document import ensure_document  # noqa: PLC0415 - letters/ builds on cases/

    with transaction() as new_files:
        post = scope.post(actor, post_id)
        raise_if(request_refusal(actor, post))
        approver = db.session.get(User, approver_id) if approver_id else None
        if approver is None or not can_approve(approver, post):
            raise Invalid(_l("Choose a leader, deputy leader or team coordinator."), field="approver_id")
        if approver.id == actor.id:
            raise Invalid(_l("You cannot approve your own post: choose someone else."), field="approver_id")
        if approver.id in writers(post):
            raise Invalid(_l("%(name)s wrote this post and cannot approve it: choose someone else.",
                             name=approver.full_name), field="approver_id")
        seen = post.content_version  # what the approver is asked to approve is the draft as it is now
        ensure_document(actor, post, new_files)  # a letter's PDF as last saved is what the approver sees
        missing = posts.missing_for_finalize(post)
        if missing:
            raise Invalid(_l("The post cannot be approved yet. Missing: %(items)s.", items=", ".join(missing)))
        text = " ".join((comment or "").split())[:2000]
        _conditional(post, (PostStatus.DRAFT,), lambda p: request_refusal(actor, p), seen=seen,
                     status=PostStatus.AWAITING_APPROVAL, approver_id=approver.id, approval_requested_by_id=actor.id,
                     approval_requested_at=utcnow())
        event(post, actor, "sent_to_approval", text, to_user=approver)
        activity.record("post_sent_to_approval", actor=actor, object_type="journal_post", object_id=post.id,
                        after={"approver": approver.username}, detail=text[:500])
        notify(approver, _l("%(name)s asks you to approve %(number)s: %(title)s", name=actor.full_name,
                            number=post.number, title=post.title), link("cases.post", post_id=post.id))
    return post


def refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not approve or return this post now (None: they may)."""
    if not can_approve(actor, post):
        return Forbidden("approve", _l("You cannot approve this post."), "journal_post", post.id)
    if post.status != PostStatus.AWAITING_APPROVAL:
        return Conflict(_l("The post is not waiting for approval."))
    if actor.id == post.approval_requested_by_id or actor.id in writers(post):
        return Forbidden("approve", _l("You cannot approve your own post."), "journal_post", post.id)
    if post.approver_id != actor.id and not _approves_all(actor):
        return Forbidden("approve", _l("The post waits for another approver."), "journal_post", post.id)
    return None


def _approves_all(actor: User) -> bool:
    """A leader (approve + search_all) may decide any waiting post, not only those sent to them."""
    return actor.can("approve") and actor.can("search_all")


def _decide(actor: User, post: JournalPost, **values) -> None:
    """The approval or return as one conditional UPDATE that holds refusal()'s rules on the row as it is
    then: still waiting, not written nor sent to approval by the actor, and (but for a leader) waiting for
    the actor. A return and a new send between the first check and this (to another approver, or sent by
    the actor themself) is refused, never approved by the one who sent it."""
    conditions = [JournalPost.status == PostStatus.AWAITING_APPROVAL, JournalPost.created_by_id != actor.id,
                  or_(JournalPost.approval_requested_by_id.is_(None), JournalPost.approval_requested_by_id != actor.id)]
    if not _approves_all(actor):
        conditions.append(JournalPost.approver_id == actor.id)
    posts.decide(post, tuple(conditions), lambda p: refusal(actor, p), **values)


def _approvable(actor: User, post_id: int) -> JournalPost:
    post = scope.post(actor, post_id)
    refused = refusal(actor, post)
    if refused is not None:
        raise refused
    return post


def approve(actor: User, post_id: int, comment: str = "", sign: bool = False) -> JournalPost:
    """Approve and finalize in one transaction (the archive job with it); sign first if asked."""
    with transaction() as signed:
        post = _approvable(actor, post_id)
        text = " ".join((comment or "").split())[:2000]
        _decide(actor, post, status=PostStatus.APPROVED, approved_by_id=actor.id, approved_at=utcnow())
        if sign:
            # The service's certificate signs; approving is what authorises it, so no esign is needed.
            sign_for_approver(actor, post, signed)
        event(post, actor, "approved", text)
        posts.finalize_post(actor, post)
        activity.record("post_approved", actor=actor, object_type="journal_post", object_id=post.id, detail=text[:500])
        for told in _told(actor, post):
            notify(told, _l("%(name)s approved %(number)s: %(title)s", name=actor.full_name, number=post.number,
                            title=post.title), link("cases.post", post_id=post.id))
    return post


def return_for_changes(actor: User, post_id: int, comment: str) -> JournalPost:
    """Send it back to the handler with what to fix (a comment is required)."""
    post = _approvable(actor, post_id)
    text = validation.required_text(comment, "comment", 2000)
    requester = post.approval_requested_by
    _decide(actor, post, status=PostStatus.DRAFT, approver_id=None)
    event(post, actor, "returned", text, to_user=requester)
    activity.record("post_returned", actor=actor, object_type="journal_post", object_id=post.id, detail=text[:500])
    for told in _told(actor, post, requester):
        notify(told, _l("%(name)s returned %(number)s: %(comment)s", name=actor.full_name, number=post.number,
                        comment=text[:200]), link("cases.post", post_id=post.id))
    db.session.commit()
    return post


def _told(actor: User, post: JournalPost, requester: User | None = None) -> list[User]:
    """Who hears of a decision: the one who asked for it, if they may still see the case (a notice names the
    post and quotes the comment); else the case's handler. Never the decider."""
    requester = requester if requester is not None else post.approval_requested_by
    case = post.case
    for candidate in (requester, case.handler):
        if candidate is not None and candidate.active and scope.may_see(candidate, case):
            return [] if candidate.id == actor.id else [candidate]
    return []


class WaitingPost(NamedTuple):
    """What the approval queue shows of a post (read-only: no ORM object per row)."""

    id: int
    number: str
    title: str
    requested_by: str  # the full name of who sent it to approval, "" when unknown
    approver: str  # the full name of the approver, "" when none


class Waiting(NamedTuple):
    post: WaitingPost
    since: datetime
    overdue: bool


# The queue's one statement, on the tables (Core rows, not the ORM's result path), built once: building
# it per request, with its two aliases of the user table, cost more than running it.
_post, _case = JournalPost.__table__, Case.__table__
_requester, _approver = User.__table__.alias("requester"), User.__table__.alias("approver")
_QUEUE = (select(_post.c.id, _case.c.number, _post.c.seq, _post.c.title, _requester.c.full_name,
                 _approver.c.full_name, _post.c.approval_requested_at)
          .select_from(_post.join(_case, _post.c.case_id == _case.c.id)
                       .outerjoin(_requester, _post.c.approval_requested_by_id == _requester.c.id)
                       .outerjoin(_approver, _post.c.approver_id == _approver.c.id))
          .where(_post.c.status == PostStatus.AWAITING_APPROVAL)
          .order_by(_post.c.approval_requested_at, _post.c.id))
_QUEUE_OF_APPROVER = _QUEUE.where(_post.c.approver_id == bindparam("approver_id"))


def queue(actor: User) -> list[Waiting]:
    """Posts waiting for the actor; a leader (approve + search_all) sees every waiting post of the service.
    One query, rows shaped for the list."""
    if _approves_all(actor):
        rows = db.session.execute(_QUEUE)
    else:
        rows = db.session.execute(_QUEUE_OF_APPROVER, {"approver_id": actor.id})
    limit = timedelta(days=int(runtime_settings.value("alerts.approval_warn_days")))
    now = utcnow()
    return [Waiting(WaitingPost(post_id, f"{case_number}-{seq}", title, by or "", to or ""), at or now,
                    now - (at or now) > limit)
            for post_id, case_number, seq, title, by, to, at in rows]


def waiting_count(actor: User) -> int:
    query = select(func.count(JournalPost.id)).where(JournalPost.status == PostStatus.AWAITING_APPROVAL)
    if not _approves_all(actor):
        query = query.where(JournalPost.approver_id == actor.id)
    return db.session.scalar(query) or 0
