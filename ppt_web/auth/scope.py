"""Who may see which cases, clients and posts: nobody sees more than their work needs.

A user with search_all sees everything. Anyone else sees the cases where they are the
responsible handler or a co-handler (open and closed), the clients of those cases and the
clients they are responsible for, and the posts of those cases. Everything else is 404.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select, true

from ..errors import NotFound
from ..extensions import db
from ..models import Case, Client, Document, JournalPost, PostStatus, User
from ..models.domain import case_cohandler


def sees_all(actor: User) -> bool:
    return actor.can("search_all")


def case_clause(actor: User) -> ColumnElement[bool]:
    """SQL condition on Case: the actor may see this case."""
    if sees_all(actor):
        return true()
    co = exists().where(case_cohandler.c.case_id == Case.id, case_cohandler.c.user_id == actor.id)
    return or_(Case.handler_id == actor.id, co)


def client_clause(actor: User) -> ColumnElement[bool]:
    if sees_all(actor):
        return true()
    co = exists().where(case_cohandler.c.case_id == Case.id, case_cohandler.c.user_id == actor.id)
    own_case = exists().where(Case.client_id == Client.id, or_(Case.handler_id == actor.id, co))
    return or_(Client.handler_id == actor.id, own_case)


def _not_found(object_type: str, object_id) -> NotFound:
    return NotFound(object_type=object_type, object_id=object_id)


def may_see(actor: User, found: Case) -> bool:
    """The same rule as case_clause, for a case already loaded."""
    return sees_all(actor) or found.handler_id == actor.id or any(u.id == actor.id for u in found.co_handlers)


def case(actor: User, case_id: int) -> Case:
    found = db.session.get(Case, case_id)  # from the identity map when this request has it already
    if found is None or not may_see(actor, found):
        raise _not_found("case", case_id)
    return found


def client(actor: User, client_id: int) -> Client:
    found = db.session.scalar(select(Client).where(Client.id == client_id, client_clause(actor)))
    if found is None:
        raise _not_found("client", client_id)
    return found


def post(actor: User, post_id: int) -> JournalPost:
    """A post of a visible case, or one the actor is asked to approve (a team coordinator may not
    otherwise see the case: the request to approve is what gives them this one post)."""
    found = db.session.get(JournalPost, post_id)
    if found is None or not (may_see(actor, found.case) or _asked_to_approve(actor, found)):
        raise _not_found("journal_post", post_id)
    return found


def _asked_to_approve(actor: User, found: JournalPost) -> bool:
    """Only while it waits for them: afterwards the case's own rules apply again."""
    return found.approver_id == actor.id and found.status == PostStatus.AWAITING_APPROVAL


def document(actor: User, document_id: int) -> Document:
    found = db.session.scalar(
        select(Document).join(JournalPost, Document.post_id == JournalPost.id)
        .join(Case, JournalPost.case_id == Case.id)
        .where(Document.id == document_id, or_(case_clause(actor), and_(
            JournalPost.approver_id == actor.id, JournalPost.status == "awaiting_approval")))
    )
    if found is None:
        raise _not_found("document", document_id)
    return found
